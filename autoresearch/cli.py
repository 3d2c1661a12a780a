"""`robo-agent research init|run|status|trial` and `robo-agent export`."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_TRIALS = 4
EXPORT_WARN_BELOW = 0.5  # a policy that fails every other held-out episode is not for a robot


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this part's subcommands to the `robo-agent` parser."""
    from robo_agent.autoresearch.workspace import DEFAULT_BUDGET, DEFAULT_DIR, DEFAULT_TASK

    research = sub.add_parser(
        "research",
        help="RL policy autoresearch: propose, train, evaluate, keep what measurably helps",
        description="Autoresearch over train.py in a git workspace, scored by a frozen "
        "evaluator on held-out seeds. `robo-agent research run` with no arguments creates "
        f"./{DEFAULT_DIR} and runs the offline optuna proposer.",
    )
    rsub = research.add_subparsers(dest="research_command", metavar="ACTION")

    init = rsub.add_parser("init", help="create a research workspace (own git repo)")
    init.add_argument("dir", help="folder to create (must be absent or empty)")
    _settings_args(init, DEFAULT_TASK, DEFAULT_BUDGET)
    init.set_defaults(func=_cmd_init)

    run = rsub.add_parser("run", help="run the research loop (creates the default workspace)")
    run.add_argument(
        "dir", nargs="?", default=DEFAULT_DIR, help=f"workspace (default ./{DEFAULT_DIR})"
    )
    _settings_args(run, DEFAULT_TASK, DEFAULT_BUDGET, note=" (only when creating the workspace)")
    run.add_argument(
        "--trials",
        type=int,
        default=None,
        help=f"stop when the ledger holds N trials after the baseline "
        f"(default {DEFAULT_TRIALS} unless --hours is given)",
    )
    run.add_argument("--hours", type=float, default=None, help="stop starting trials after H hours")
    run.add_argument(
        "--proposer",
        choices=("optuna", "random", "llm"),
        default=None,
        help="default: llm when --model or OPENAI_MODEL is set, else optuna",
    )
    run.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (llm proposer)")
    run.add_argument("--model", default=None, help="model name (llm proposer)")
    run.add_argument("--parallel", type=int, default=1, help="candidates trained at once (K)")
    run.add_argument("--backend", choices=("local", "ray"), default="local")
    run.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    run.add_argument("--seed", type=int, default=None, help="proposer seed")
    run.add_argument("--quiet", action="store_true", help="no live progress")
    _sandbox_arg(run)
    run.set_defaults(func=_cmd_run)

    status = rsub.add_parser("status", help="print the ledger and the best commit")
    status.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    status.set_defaults(func=_cmd_status)

    trial = rsub.add_parser(
        "trial", help="run and evaluate the committed train.py once (external proposer)"
    )
    trial.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    trial.add_argument("--quiet", action="store_true")
    _sandbox_arg(trial)
    trial.set_defaults(func=_cmd_trial)
    research.set_defaults(func=lambda _args: research.print_help() or 2)

    export = sub.add_parser("export", help="write the best (or a chosen) trial's policy artifact")
    export.add_argument("dir", help="research workspace")
    export.add_argument("--trial", type=int, default=None, help="trial number (default: best)")
    export.add_argument("--out", required=True, help="artifact folder to create")
    export.add_argument("--warn-below", type=float, default=EXPORT_WARN_BELOW,
                        help="warn when the trial's held-out score is below this "
                        f"(default {EXPORT_WARN_BELOW})")  # fmt: skip
    export.set_defaults(func=_cmd_export)


def _sandbox_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-sandbox", action="store_true",
        help="run candidate train.py WITHOUT isolation (trusted code only; recorded in every "
        "ledger row)",
    )  # fmt: skip


def _settings_args(p: argparse.ArgumentParser, task: str, budget: float, note: str = "") -> None:
    p.add_argument("--task", default=task, help=f"Gymnasium id (default {task}){note}")
    p.add_argument(
        "--budget",
        type=float,
        default=budget,
        help=f"cap on the CPU seconds of one training run (default {budget:g}){note}",
    )
    p.add_argument("--budget-steps", type=int, default=None,
                   help=f"env steps per training run (default 5000){note}")  # fmt: skip
    p.add_argument("--repeats", type=int, default=None, help=f"training seeds per candidate{note}")
    p.add_argument("--episodes", type=int, default=None, help=f"held-out evaluation episodes{note}")
    p.add_argument("--domain-randomization", action="store_true",
                   help=f"evaluate under domain randomisation{note}")  # fmt: skip
    p.add_argument("--device", default=None, metavar="cpu|cuda|cuda:N|auto",
                   help=f"torch device of train.py (default auto: the GPU if torch sees one, "
                   f"else the CPU){note}")  # fmt: skip


def _errors() -> tuple[type[BaseException], ...]:
    from robo_agent.autoresearch.gitops import GitError
    from robo_agent.autoresearch.proposers import ProposerUnavailable
    from robo_agent.autoresearch.workspace import WorkspaceError

    from robo_agent.core.artifact import ArtifactError
    from robo_agent.core.ledger import LedgerError
    from robo_agent.core.research_config import ResearchConfigError
    from robo_agent.core.research_source import SourceError

    return (WorkspaceError, LedgerError, ResearchConfigError, GitError, ProposerUnavailable,
            ArtifactError, SourceError, ValueError)  # fmt: skip


def _guarded(fn: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except _errors() as err:
            print(f"robo-agent {args.command}: {err}", file=sys.stderr)
            return 2

    return wrapper


def _init_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if args.repeats is not None:
        extra["repeats"] = args.repeats
    if args.episodes is not None:
        extra["eval_episodes"] = args.episodes
    if args.domain_randomization:
        extra["domain_randomization"] = True
    if args.device is not None:
        extra["device"] = args.device
    if args.budget_steps is not None:
        extra["budget_steps"] = args.budget_steps
    return extra


@_guarded
def _cmd_init(args: argparse.Namespace) -> int:
    from robo_agent.autoresearch.workspace import Workspace

    ws = Workspace.init(args.dir, task=args.task, budget=args.budget, **_init_kwargs(args))
    cfg = ws.config
    print(f"created research workspace {ws.path} (branch research, commit {ws.repo.head()[:8]})")
    print(
        f"task {cfg.task}, {cfg.budget_steps} env steps per run (CPU cap "
        f"{cfg.budget_seconds:g} s) x {cfg.repeats} seeds, {cfg.eval_episodes} held-out episodes, "
        f"device {cfg.device}"
    )
    print(f"next: robo-agent research run {args.dir}")
    return 0


def _open_or_create(args: argparse.Namespace) -> Any:
    from robo_agent.autoresearch.workspace import Workspace

    path = Path(args.dir)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        ws = Workspace.init(path, task=args.task, budget=args.budget, **_init_kwargs(args))
        print(
            f"created research workspace {ws.path} ({ws.config.task}, "
            f"budget {ws.config.budget_seconds:g} s)"
        )
        return ws
    ws = Workspace(path)
    cfg = ws.config
    if args.task != cfg.task or args.budget != cfg.budget_seconds:
        print(f"note: {ws.path} exists; its research.yaml applies ({cfg.task}, budget "
              f"{cfg.budget_seconds:g} s), --task/--budget only apply when creating one",
              file=sys.stderr)  # fmt: skip
    if args.device is not None and args.device != cfg.device:
        print(f"note: {ws.path} exists; its research.yaml device '{cfg.device}' applies "
              f"(edit it there to change the device of later trials)", file=sys.stderr)  # fmt: skip
    return ws


@_guarded
def _cmd_run(args: argparse.Namespace) -> int:
    from robo_agent.autoresearch.proposers import make_proposer
    from robo_agent.autoresearch.runner import Runner

    if args.trials is not None and args.trials < 0:
        raise ValueError("--trials must be >= 0")
    if args.hours is not None and not args.hours > 0:
        raise ValueError("--hours must be > 0")
    name = args.proposer or ("llm" if (args.model or os.environ.get("OPENAI_MODEL")) else "optuna")
    proposer = make_proposer(name, seed=args.seed, base_url=args.base_url, model=args.model)
    ws = _open_or_create(args)
    trials = args.trials if args.trials is not None else (None if args.hours else DEFAULT_TRIALS)
    runner = Runner(
        ws,
        proposer,
        parallel=args.parallel,
        backend=args.backend,
        address=args.address,
        live=not args.quiet,
        sandbox=not args.no_sandbox,
    )
    try:
        best = runner.run(trials=trials, hours=args.hours)
    except KeyboardInterrupt:
        print(
            f"interrupted; `robo-agent research run {args.dir}` resumes where it stopped",
            file=sys.stderr,
        )
        return 130
    _print_best(ws, best)
    _print_health(ws)
    return 0


def _print_health(ws: Any) -> None:
    from robo_agent.core.research_health import smallest_detectable_gain, warnings

    cfg, rows = ws.config, ws.ledger.rows()
    gain = smallest_detectable_gain(rows, cfg.repeats, cfg.eval_episodes, cfg.z, cfg.min_margin,
                                    cfg.racing_looks)
    if not math.isnan(gain):
        print(f"smallest detectable gain: {gain:.3f} (kept 4 times in 5 with {cfg.repeats} "
              f"seeds; --repeats N at init shrinks it by sqrt(N / {cfg.repeats}))")  # fmt: skip
    for text in warnings(rows, cfg.budget_steps, cfg.repeats):
        print(f"warning: {text}", file=sys.stderr)


def _print_best(ws: Any, best: Any) -> None:
    if best is None:
        print("no successful baseline yet")
        return
    print(
        f"best: trial {best.trial} score {best.score:.3f} +- {best.spread:.3f} "
        f"commit {best.commit[:12]} ({best.description})"
    )
    print(f"ledger {ws.ledger.path}, plot {ws.path / 'progress.png'}")


@_guarded
def _cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from robo_agent.autoresearch.workspace import Workspace

    from robo_agent.core.ledger import best_row

    ws = Workspace(args.dir)
    found = ws.ledger.check()
    rows = found.rows
    if found.problem:  # reported, not repaired: `research run` moves the bad lines aside
        print(f"warning: ledger {ws.ledger.path}: {found.problem}; showing the "
              f"{len(rows)} verified row(s) before it; `research run` will move lines "
              f"{found.first_bad}+ to {ws.ledger.aside}", file=sys.stderr)  # fmt: skip
    cfg = ws.config
    table = Table(title=f"{ws.path} · {cfg.task} · {cfg.budget_steps} steps per run (CPU cap "
                  f"{cfg.budget_seconds:g} s) × {cfg.repeats} seeds")  # fmt: skip
    cols = ("trial", "status", "proposer", "score", "spread", "incumbent+margin", "wall s",
            "CPU s", "steps", "mem MB", "commit", "description")  # fmt: skip
    for col in cols:
        table.add_column(col, overflow="fold")

    def f(x: float, d: int = 3) -> str:
        return "-" if math.isnan(x) else f"{x:.{d}f}"

    for r in rows:
        bar = "-" if math.isnan(r.margin) else f"{r.incumbent:.3f}+{r.margin:.3f}"
        table.add_row(str(r.trial), r.status, r.proposer, f(r.score), f(r.spread), bar,
                      f(r.train_seconds, 1), f(r.cpu_seconds, 1), str(r.env_steps),
                      f(r.peak_mem_mb, 0),
                      r.commit[:8], r.description[:80])  # fmt: skip
    console = Console()
    if not console.is_terminal:  # logs and pipes: no 80-column squeeze
        console = Console(width=200)
    console.print(table)
    best = best_row(rows)
    if best is None:
        print("best: none yet")
    else:
        print(f"best: trial {best.trial} commit {best.commit} score {best.score:.3f}")
    _print_health(ws)
    return 0


@_guarded
def _cmd_trial(args: argparse.Namespace) -> int:
    from robo_agent.autoresearch.runner import Runner
    from robo_agent.autoresearch.workspace import Workspace

    ws = Workspace(args.dir)
    row = Runner(ws, None, live=not args.quiet, sandbox=not args.no_sandbox).run_external()
    for key in ("score", "spread", "final_distance", "smoothness", "train_seconds", "env_steps",
                "peak_mem_mb"):  # fmt: skip
        value = getattr(row, key)
        print(f"{key}: {value}" if isinstance(value, int) else f"{key}: {value:.6g}")
    print(f"status: {row.status}")
    print(f"trial: {row.trial}")
    print(f"commit: {row.commit}")
    return 0 if row.status in ("baseline", "keep", "discard") else 1


@_guarded
def _cmd_export(args: argparse.Namespace) -> int:
    from robo_agent.autoresearch.workspace import Workspace, WorkspaceError

    from robo_agent.core.artifact import load_spec, with_provenance, write_spec
    from robo_agent.core.ledger import best_row

    ws = Workspace(args.dir)
    rows = ws.ledger.rows()
    if args.trial is None:
        row = best_row(rows)
        if row is None:
            raise WorkspaceError(f"{ws.path}: no scored trial to export yet")
    else:
        found = [r for r in rows if r.trial == args.trial]
        if not found:
            raise WorkspaceError(f"{ws.path}: no trial {args.trial} in the ledger")
        row = found[0]
    if not row.succeeded:
        raise WorkspaceError(f"trial {row.trial} has status {row.status}: no artifact to export")
    candidates = []
    for rep in sorted(ws.trial_dir(row.trial).glob("r*/artifact")):
        spec = load_spec(rep)  # verifies the sha256
        candidates.append((spec.provenance.score or 0.0, rep, spec))
    if not candidates:
        raise WorkspaceError(f"trial {row.trial}: no artifact under {ws.trial_dir(row.trial)}")
    _, source, spec = max(candidates, key=lambda c: c[0])
    if row.score < args.warn_below:
        print(f"warning: trial {row.trial} scores {row.score:.3f} on the held-out episodes "
              f"(below {args.warn_below:g}; this repeat {spec.provenance.score or 0.0:.3f}): "
              f"the policy fails most goals; train longer or keep researching before "
              f"deploying it", file=sys.stderr)  # fmt: skip
    out = Path(args.out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WorkspaceError(f"{out} already exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copy(source / spec.model_file, staging / spec.model_file)
        stamped = with_provenance(spec, spread=None if math.isnan(row.spread) else row.spread)
        write_spec(staging, stamped)
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(
        f"exported trial {row.trial} ({source.parent.name}, score "
        f"{stamped.provenance.score:.3f}, commit {row.commit[:12]}) to {out}"
    )
    return 0
