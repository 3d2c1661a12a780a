"""What a research run should tell its user about itself: warnings and the detectable gain.

Pure functions over the ledger rows and the frozen settings, shared by `research run`
(printed at the end, and after the baseline) and `research status`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from robo_agent.core.ledger import LedgerRow, best_row
from robo_agent.core.research_decision import detectable_gain
from robo_agent.core.research_round import seed_dof, seed_noise

LOW_SCORE = 0.05
HIGH_SCORE = 0.95
#: the baseline train.py's tree (learner + sim worker) gets ~0.9-1.0 CPU-seconds per
#: wall second on a lightly loaded 2-core machine (measured: 18.8 CPU-s in 20.5 s);
#: below half that, other work has most of the machine
OVERLOADED_CPU_PER_WALL = 0.5
MIN_TIES = 3


def smallest_detectable_gain(
    rows: Sequence[LedgerRow], repeats: int, episodes: int, z: float, min_margin: float,
    looks: int = 1,
) -> float:
    """The gain over the incumbent a candidate needs to be kept 4 times out of 5 at
    `repeats` seeds (`looks`: decisions a race may take)."""
    inc = best_row(list(rows))
    if inc is None or math.isnan(inc.score):
        return math.nan
    return detectable_gain(inc.score, seed_noise(rows), repeats, episodes, z, min_margin,
                           seed_dof(rows), looks)


def warnings(rows: Sequence[LedgerRow], budget_steps: int, repeats: int) -> list[str]:
    """Plain-language problems with a run and what to do about each."""
    out: list[str] = []
    scored = [r for r in rows if r.succeeded]
    base = next((r for r in scored if r.status == "baseline"), None)
    if base is not None and base.score < LOW_SCORE:
        out.append(
            f"the baseline scores {base.score:.3f}: near 0 no candidate can be told from "
            f"another; give each run more experience (research init --budget-steps "
            f"{2 * budget_steps or 16000}) or choose an easier task"
        )
    if base is not None and base.score > HIGH_SCORE:
        out.append(
            f"the baseline scores {base.score:.3f}: no headroom left to show a gain; use "
            f"fewer steps per run (research init --budget-steps {budget_steps // 2})"
        )
    trials = [r for r in scored if r.status in ("keep", "discard")]
    if trials and all(r.score == 0 for r in trials) and (base is None or base.score == 0):
        out.append("every trial scored 0: the task is out of reach at this budget")
    ties = [r for r in trials if r.status == "discard" and abs(r.score - r.incumbent) <= r.margin]
    if len(trials) >= MIN_TIES and len(ties) == len(trials):
        widest = max(r.margin for r in ties)
        out.append(
            f"every one of {len(trials)} trials tied with the incumbent (within the noise "
            f"margin, up to {widest:.3f}): gains this small cannot be seen with {repeats} "
            f"seeds; use research init --repeats {2 * repeats} (margin / 1.4) or bolder "
            f"changes"
        )
    capped = [r for r in scored if budget_steps and 0 < r.env_steps < budget_steps]
    if capped:
        names = ", ".join(str(r.trial) for r in capped[:5])
        out.append(
            f"trial(s) {names} hit the CPU-seconds cap before their {budget_steps} env steps: "
            f"they trained on less experience (a compute-hungry train.py, or a machine so "
            f"loaded that CPU time inflates); raise --budget if the baseline is among them"
        )
    rates = [r.cpu_seconds / r.train_seconds for r in scored
             if r.train_seconds > 0 and not math.isnan(r.cpu_seconds)]  # fmt: skip
    if rates and sum(rates) / len(rates) < OVERLOADED_CPU_PER_WALL:
        rate = sum(rates) / len(rates)
        out.append(
            f"the machine is overloaded: train.py got {rate:.2f} CPU-seconds per second "
            f"(about 1 on a free 2-core machine); scores do not depend on it (fixed steps per "
            f"run) but trials take longer; use a smaller --parallel or a quieter time"
        )
    return out
