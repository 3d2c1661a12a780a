"""Proposers: where the next candidate `train.py` comes from.

* `optuna` — TPE over the hyperparameters `train.py` declares in its tunable block; edits
  only that block. Its study is rebuilt from the ledger (each row's commit holds the
  values tried), so a resumed run continues the same search.
* `random` — uniform over the declared ranges (log-uniform for `log` ranges), a control.
* `llm` — see `robo_agent.autoresearch.llm_proposer`.

A proposer returns a `Proposal` (new source + description) or raises `Rejected` (logged
as a `rejected` row) or `ProposerUnavailable` (the run stops with a clear message).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from robo_agent.core.ledger import LedgerRow
from robo_agent.core.research_source import SourceError, Tunable, apply_values, parse_tunables

PROPOSERS = ("optuna", "random", "llm")


class Rejected(Exception):
    """The proposal is unusable; the loop logs a `rejected` row and goes on."""


class ProposerUnavailable(RuntimeError):
    """The proposer cannot work at all (e.g. the LLM endpoint is unreachable)."""


@dataclass
class Context:
    """What a proposer may look at."""

    trial: int
    incumbent_source: str
    incumbent: LedgerRow
    rows: list[LedgerRow]
    program: str = ""
    last_failure: str = ""
    history: list[tuple[dict[str, Any], LedgerRow]] = field(default_factory=list)


@dataclass
class Proposal:
    source: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    handle: Any = None  # proposer-private (e.g. the optuna trial)


class Proposer:
    name = "base"

    def check(self) -> None:
        """Raise `ProposerUnavailable` if the proposer cannot work (before any write)."""

    def bootstrap(self, history: list[tuple[dict[str, Any], LedgerRow]]) -> None:
        """Learn from earlier trials: (their tunable values, their ledger row)."""

    def propose(self, ctx: Context) -> Proposal:
        raise NotImplementedError

    def feedback(self, proposal: Proposal, row: LedgerRow) -> None:
        """Told once the proposal's row is in the ledger."""


def _describe(values: dict[str, Any], base: dict[str, Any]) -> str:
    changed = [f"{k}={_fmt(v)}" for k, v in values.items() if base.get(k) != v]
    return "set " + ", ".join(changed) if changed else "re-run of the incumbent values"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class RandomProposer(Proposer):
    """Uniform over the declared ranges; a control for the TPE proposer."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def sample(self, tun: Tunable) -> Any:
        if tun.kind == "choice":
            return self.rng.choice(list(tun.choices))
        assert tun.low is not None and tun.high is not None
        if tun.kind == "log":
            return math.exp(self.rng.uniform(math.log(tun.low), math.log(tun.high)))
        if tun.kind == "int":
            return self.rng.randint(int(tun.low), int(tun.high))
        return self.rng.uniform(tun.low, tun.high)

    def propose(self, ctx: Context) -> Proposal:
        tunables = parse_tunables(ctx.incumbent_source)
        values = {t.name: self.sample(t) for t in tunables}
        base = {t.name: t.value for t in tunables}
        return Proposal(apply_values(ctx.incumbent_source, values), _describe(values, base), values)


class OptunaProposer(Proposer):
    """Optuna TPE over the tunable block (multivariate, constant liar for parallel asks)."""

    name = "optuna"

    def __init__(self, seed: int | None = None, startup_trials: int = 3) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup_trials, multivariate=True, constant_liar=True
        )
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._distributions: dict[str, Any] | None = None
        self._tunables: dict[str, Tunable] = {}

    def _dists(self, tunables: list[Tunable]) -> dict[str, Any]:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        dists: dict[str, Any] = {}
        for t in tunables:
            if t.kind == "choice":
                dists[t.name] = CategoricalDistribution(list(t.choices))
            elif t.kind == "int":
                dists[t.name] = IntDistribution(int(t.low or 0), int(t.high or 0))
            else:
                dists[t.name] = FloatDistribution(
                    float(t.low or 0), float(t.high or 0), log=t.kind == "log"
                )
        return dists

    def bootstrap(self, history: list[tuple[dict[str, Any], LedgerRow]]) -> None:
        import optuna

        for values, row in history:
            if self._distributions is None:
                continue
            params = {k: v for k, v in values.items() if k in self._distributions}
            if set(params) != set(self._distributions):
                continue  # a different tunable block (e.g. an LLM edit): not comparable
            if any(not self._tunables[k].contains(v) for k, v in params.items()):
                continue  # outside the baseline's ranges
            ok = row.succeeded and not math.isnan(row.score)
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=self._distributions,
                    value=row.score if ok else None,
                    state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL,
                )
            )

    def prepare(self, source: str) -> None:
        """Fix the search space from the baseline's tunable block (before `bootstrap`)."""
        tunables = parse_tunables(source)
        self._tunables = {t.name: t for t in tunables}
        self._distributions = self._dists(tunables)

    def propose(self, ctx: Context) -> Proposal:
        tunables = parse_tunables(ctx.incumbent_source)
        if self._distributions is None:
            self.prepare(ctx.incumbent_source)
        assert self._distributions is not None
        trial = self.study.ask(self._distributions)
        values = dict(trial.params)
        base = {t.name: t.value for t in tunables}
        try:
            source = apply_values(ctx.incumbent_source, values)
        except SourceError as err:
            self.study.tell(trial, state=_fail_state())
            raise Rejected(str(err)) from None
        return Proposal(source, _describe(values, base), values, handle=trial)

    def feedback(self, proposal: Proposal, row: LedgerRow) -> None:
        if proposal.handle is None:
            return
        if row.succeeded and not math.isnan(row.score):
            self.study.tell(proposal.handle, row.score)
        else:
            self.study.tell(proposal.handle, state=_fail_state())


def _fail_state() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL


def make_proposer(name: str, seed: int | None = None, **llm: Any) -> Proposer:
    """Build a proposer by name; `llm` keyword arguments go to the LLM proposer."""
    if name == "optuna":
        return OptunaProposer(seed=seed)
    if name == "random":
        return RandomProposer(seed=seed)
    if name == "llm":
        from robo_agent.autoresearch.llm_proposer import LLMProposer

        return LLMProposer(**llm)
    raise ValueError(f"unknown proposer '{name}' (choose from {', '.join(PROPOSERS)})")
