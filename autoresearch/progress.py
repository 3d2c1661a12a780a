"""Live terminal progress of a research run and the `progress.png` plot."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from robo_agent.core.ledger import LedgerRow

STATUS_COLOURS = {
    "baseline": "tab:blue",
    "keep": "tab:green",
    "discard": "tab:gray",
    "crash": "tab:red",
    "timeout": "tab:orange",
    "rejected": "tab:purple",
}


def plot_progress(rows: list[LedgerRow], path: str | Path, title: str = "") -> Path:
    """Score per trial (coloured by status) and the kept frontier, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    # Figure + Agg canvas, no pyplot: safe to draw from the runner's background thread.
    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for status, colour in STATUS_COLOURS.items():
        pts = [
            (r.trial, r.score, 0.0 if math.isnan(r.spread) else r.spread)
            for r in rows
            if r.status == status and not math.isnan(r.score)
        ]
        if pts:
            xs, ys, errs = zip(*pts, strict=True)
            ax.errorbar(xs, ys, yerr=errs, fmt="o", c=colour, label=status, ms=5, capsize=3,
                        zorder=3)  # fmt: skip
        fails = [r.trial for r in rows if r.status == status and math.isnan(r.score)]
        if fails:
            ax.scatter(
                fails, [0.0] * len(fails), c=colour, marker="x", label=f"{status} (no score)"
            )
    frontier_x, frontier_y, best = [], [], None
    for r in rows:
        if r.status in ("baseline", "keep") and not math.isnan(r.score):
            best = r.score
        if best is not None:
            frontier_x.append(r.trial)
            frontier_y.append(best)
    if frontier_x:
        ax.step(frontier_x, frontier_y, where="post", c="tab:green", lw=2, label="kept frontier")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (error bars: spread over training seeds)")
    ax.set_ylabel("score (held-out success rate)")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title(title or "research progress")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)
    return path


class LiveProgress:
    """Current trials, elapsed/budget, best so far; a rich live view on a terminal, plain
    lines otherwise (CI logs, pipes)."""

    def __init__(self, budget: float, repeats: int, target: str, enabled: bool = True) -> None:
        from rich.console import Console

        self.console = Console(stderr=False)
        self.budget = budget
        self.repeats = repeats
        self.target = target
        self.enabled = enabled
        self.active: dict[int, tuple[int, str, float]] = {}
        self.best = "no incumbent yet"
        self.done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._live: Any = None

    def __enter__(self) -> LiveProgress:
        if self.enabled and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(
                self._render(),
                console=self.console,
                refresh_per_second=2,
                get_renderable=self._render,
                transient=False,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def _render(self) -> Any:
        from rich.table import Table

        with self._lock:
            table = Table(
                title=f"research · {self.target} · {self.done} ledger rows · "
                f"{time.monotonic() - self.started:,.0f} s elapsed · best: {self.best}",
                title_justify="left",
            )
            for col in ("trial", "repeat", "phase", "elapsed wall / CPU cap"):
                table.add_column(col)
            now = time.monotonic()
            for trial, (rep, phase, since) in sorted(self.active.items()):
                elapsed = now - since
                filled = min(int(20 * elapsed / self.budget), 20) if phase == "train" else 20
                bar = "█" * filled + "·" * (20 - filled)
                table.add_row(
                    str(trial), f"{rep + 1}/{self.repeats}", phase,
                    f"{bar} {elapsed:5.1f}/{self.budget:.0f} s",
                )  # fmt: skip
            return table

    def phase(self, trial: int, repeat: int, phase: str) -> None:
        with self._lock:
            if phase == "done":
                self.active.pop(trial, None)
            else:
                self.active[trial] = (repeat, phase, time.monotonic())
        if self._live is None and self.enabled and phase != "done":
            print(
                f"[research] trial {trial}: repeat {repeat + 1}/{self.repeats} {phase}", flush=True
            )

    def row(self, row: LedgerRow, best: LedgerRow | None) -> None:
        with self._lock:
            self.done += 1
            if best is not None:
                self.best = f"{best.score:.3f} (trial {best.trial}, {best.commit[:8]})"
        score = "-" if math.isnan(row.score) else f"{row.score:.3f}"
        spread = "" if math.isnan(row.spread) else f" +- {row.spread:.3f}"
        bar = (
            ""
            if math.isnan(row.margin)
            else (f" vs incumbent {row.incumbent:.3f} + margin {row.margin:.3f}")
        )
        line = f"trial {row.trial} [{row.proposer}] {row.status}: score {score}{spread}{bar}"
        if row.status != "baseline":
            line += f" · {row.description}"
        if self.enabled:
            self.console.print(line, markup=False, highlight=False)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, markup=False, highlight=False)
