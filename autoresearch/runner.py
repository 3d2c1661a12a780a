"""The research loop: baseline, then propose → commit → train → evaluate → decide → ledger.

Order of effects, chosen so that `kill -9` at any point loses and duplicates nothing:

1. proposals are vetted; rejected ones get their ledger row at once;
2. accepted ones are committed off the incumbent (plumbing; the working tree and the
   branch do not move), referenced as `refs/trials/<n>`, and listed in
   `.research/pending.json`;
3. the candidates train and are evaluated (locally, K at a time, or as Ray tasks);
4. their rows are appended to `results.tsv` (one atomic line each);
5. a kept candidate's commit becomes the branch head (fast-forward);
6. the pending record is cleared and `progress.png` redrawn.

On start, `resume` fast-forwards to the ledger's incumbent if step 5 was cut short and
re-runs any pending candidate whose row is missing, under its original trial number.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robo_agent.autoresearch import sandbox as sandboxing
from robo_agent.autoresearch.devices import resolve as resolve_device
from robo_agent.autoresearch.execute import Job, JobResult, run_jobs_locally
from robo_agent.autoresearch.gitops import GitError
from robo_agent.autoresearch.progress import LiveProgress, plot_progress
from robo_agent.autoresearch.proposers import (
    Context,
    OptunaProposer,
    Proposal,
    Proposer,
    Rejected,
)
from robo_agent.autoresearch.workspace import Workspace, WorkspaceError

from robo_agent.core.ledger import LedgerRow, best_row
from robo_agent.core.research_decision import mean
from robo_agent.core.research_round import Outcome, Rules, record_round
from robo_agent.core.research_source import SourceError, current_values, vet_train_source

JobRunner = Callable[[list[Job], list[Path], Any], list[JobResult]]


@dataclass
class Candidate:
    trial: int
    commit: str
    parent: str
    proposer: str
    description: str
    proposal: Proposal | None = None


def _outcome(cand: Candidate, res: JobResult) -> Outcome:
    """A job's result as the plain data the pure decision step takes."""
    reps = res.repeats
    ok = [r for r in reps if r.status == "ok"]
    tail = res.failure_tail() if res.status != "ok" else ""
    return Outcome(
        trial=cand.trial, commit=cand.commit, parent=cand.parent, proposer=cand.proposer,
        description=cand.description, status=res.status, scores=res.scores,
        repeats=len(reps),
        train_seconds=mean([r.train_seconds for r in reps]),
        cpu_seconds=mean([r.cpu_seconds for r in reps]),
        env_steps=int(mean([r.env_steps for r in reps]) or 0) if reps else 0,
        peak_mem_mb=max((r.peak_mem_mb for r in reps), default=math.nan),
        final_distance=mean([r.final_distance for r in ok]),
        smoothness=mean([r.smoothness for r in ok]),
        wall_seconds=res.wall_seconds,
        failure_line=next((ln for ln in reversed(tail.splitlines()) if ln.strip()), ""),
    )  # fmt: skip


class Runner:
    """Drives one workspace. `backend` is 'local' or 'ray' (`address` for a cluster)."""

    def __init__(
        self,
        ws: Workspace,
        proposer: Proposer | None,
        parallel: int = 1,
        backend: str = "local",
        address: str | None = None,
        live: bool = True,
        sandbox: bool = True,
    ) -> None:
        if parallel < 1:
            raise ValueError("--parallel must be at least 1")
        if backend not in ("local", "ray"):
            raise ValueError(f"unknown backend '{backend}' (local or ray)")
        self.ws = ws
        self.proposer = proposer
        self.parallel = parallel
        self.backend = backend
        # Local runs train a candidate's seeds side by side on the cores the trials leave
        # (2 cores, --parallel 1: two at a time); a Ray task holds one CPU slot, so one.
        self.parallel_repeats = max(1, (os.cpu_count() or 1) // parallel) \
            if backend == "local" else 1
        self.address = address
        self.sandbox = "bwrap" if sandbox else "none"
        ws.ledger.sandbox = self.sandbox  # every row this runner writes records it
        cfg = ws.config
        self.progress = LiveProgress(cfg.budget_seconds, cfg.max_repeats, cfg.task, enabled=live)
        self.last_failure = ""
        self._bootstrapped = False
        self._plotter: threading.Thread | None = None

    # -- helpers --------------------------------------------------------------------------
    def _race(self, baseline: bool) -> dict[str, Any] | None:
        """Racing settings for this round's candidates (None: the baseline, all seeds)."""
        cfg = self.ws.config
        inc = None if baseline else best_row(self._rows())
        if inc is None:
            return None
        return {
            "incumbent_scores": inc.scores or [inc.score] * max(inc.repeats, 1),
            "noise_groups": [r.scores for r in self._rows() if r.succeeded and r.scores],
            "episodes": cfg.eval_episodes,
            "repeats": cfg.repeats,
            "max_repeats": cfg.max_repeats,
            "z": cfg.z,
            "min_margin": cfg.min_margin,
            "looks": cfg.racing_looks,
        }

    def _job(self, cand: Candidate, source: str, race: dict[str, Any] | None = None) -> Job:
        cfg = self.ws.config
        return Job(
            trial=cand.trial,
            commit=cand.commit,
            source=source,
            task=cfg.task,
            budget_seconds=cfg.budget_seconds,
            budget_steps=cfg.budget_steps,
            grace_seconds=cfg.grace_seconds,
            wall_factor=cfg.wall_factor,
            train_seeds=cfg.train_seeds[: cfg.max_repeats],
            race=race,
            eval_seed_base=self.ws.eval_seed_base,
            eval_episodes=cfg.eval_episodes,
            domain_randomization=cfg.domain_randomization,
            device=cfg.device,
            sandbox=self.sandbox,
            memory_limit_mb=cfg.memory_limit_mb,
            parallel_repeats=self.parallel_repeats,
        )

    def _execute(self, jobs: list[Job]) -> list[JobResult]:
        folders = [self.ws.trial_dir(j.trial) for j in jobs]
        if self.backend == "ray":
            from robo_agent.autoresearch.ray_backend import run_jobs_ray

            return run_jobs_ray(jobs, folders, self.address, self.progress.phase)
        return run_jobs_locally(jobs, folders, self.progress.phase)

    def _rows(self) -> list[LedgerRow]:
        return self.ws.ledger.rows()

    def trials_done(self) -> int:
        """Trials after the baseline (rows whose proposer is not 'baseline')."""
        return sum(1 for r in self._rows() if r.proposer != "baseline")

    # -- resume ---------------------------------------------------------------------------
    def resume(self) -> None:
        """Reconcile git with the ledger and finish candidates a killed run left behind."""
        repo = self.ws.repo
        self._heal_ledger()
        pending = self.ws.read_pending()
        if pending:
            fields = ("trial", "commit", "parent", "proposer", "description")
            cands = [Candidate(**{k: e[k] for k in fields}) for e in pending]
            listed = ", ".join(str(c.trial) for c in cands)
            self.progress.note(f"resuming {len(cands)} unfinished trial(s): {listed}")
            baseline = [c for c in cands if c.proposer == "baseline"]
            if baseline:
                self._run_round(baseline, baseline=True)
            others = [c for c in cands if c.proposer != "baseline"]
            if others:
                self._run_round(others)
        self.ws.clear_pending()
        inc = best_row(self._rows())
        head = repo.head()
        if inc is not None and inc.commit and head != inc.commit:
            if repo.is_ancestor(head, inc.commit):
                repo.fast_forward(inc.commit)  # the kept row was written, the move was not
                self.progress.note(f"resumed: moved the branch to kept trial {inc.trial}")
            elif head in {e["commit"] for e in pending}:
                repo.reset_hard(inc.commit)  # an external candidate that was not kept
            elif self.ws.ledger.healed and repo.is_ancestor(inc.commit, head):
                repo.reset_hard(inc.commit)  # its kept row was quarantined: back to the last good
            else:
                raise WorkspaceError(
                    f"HEAD {head[:8]} is not the ledger's incumbent {inc.commit[:8]} (trial "
                    f"{inc.trial}); evaluate your commit with `robo-agent research trial` or "
                    f"`git reset --hard {inc.commit[:8]}`"
                )

    # -- rounds ---------------------------------------------------------------------------
    def run_baseline(self) -> LedgerRow:
        repo = self.ws.repo
        head = repo.head()
        trial = self.ws.ledger.next_trial()
        cand = Candidate(trial, head, "", "baseline", "baseline train.py")
        source = repo.show(head, "train.py")
        try:
            vet_train_source(source)
        except SourceError as err:
            raise WorkspaceError(f"the committed train.py cannot run: {err}") from None
        repo.set_ref(f"refs/trials/{trial}", head)
        self.ws.write_pending([cand.__dict__ | {"proposal": None}])
        rows = self._run_round([cand], baseline=True)
        return rows[0]

    def _run_round(self, cands: list[Candidate], baseline: bool = False) -> list[LedgerRow]:
        repo = self.ws.repo
        race = self._race(baseline)
        jobs = [self._job(c, repo.show(c.commit, "train.py"), race) for c in cands]
        self.ws.check_harness()
        results = self._execute(jobs)
        self.ws.check_harness()  # nothing is recorded from a harness that moved meanwhile
        return self._record(cands, results, baseline)

    def _record(
        self, cands: list[Candidate], results: list[JobResult], baseline: bool
    ) -> list[LedgerRow]:
        cfg = self.ws.config
        outcomes = [_outcome(c, r) for c, r in zip(cands, results, strict=True)]
        for cand, res in zip(cands, results, strict=True):
            if res.status != "ok":
                tail = res.failure_tail()
                self.last_failure = tail
                (self.ws.trial_dir(cand.trial) / "failure.log").write_text(tail + "\n")
        rules = Rules(cfg.eval_episodes, cfg.z, cfg.min_margin, cfg.min_cpu_gain,
                      cfg.racing_looks)
        rows = record_round(outcomes, self._rows(), rules, baseline)
        for cand, row in zip(cands, rows, strict=True):
            self.ws.ledger.append(row)
            if self.proposer is not None and cand.proposal is not None:
                self.proposer.feedback(cand.proposal, row)
            self.progress.row(row, best_row(self._rows()))
        kept = [r for r in rows if r.status in ("keep", "baseline")]
        if kept and kept[-1].commit and kept[-1].commit != self.ws.repo.head():
            self.ws.repo.fast_forward(kept[-1].commit)
        self.ws.clear_pending()
        self._plot()
        return rows

    def _plot(self) -> None:
        """Redraw progress.png in the background (it overlaps the next trial's training)."""
        self.wait_for_plot()
        rows = self._rows()

        def draw() -> None:
            try:
                plot_progress(rows, self.ws.path / "progress.png", f"{self.ws.config.task}")
            except Exception as err:  # a plotting failure must never stop the research loop
                self.progress.note(f"(progress.png not updated: {err})")

        self._plotter = threading.Thread(target=draw, name="progress-plot")
        self._plotter.start()

    def wait_for_plot(self) -> None:
        if self._plotter is not None:
            self._plotter.join()
            self._plotter = None

    def _bootstrap(self) -> None:
        if self._bootstrapped or self.proposer is None:
            return
        self._bootstrapped = True
        rows = self._rows()
        history = []
        for r in rows:
            if not r.commit:
                continue
            try:
                history.append((current_values(self.ws.repo.show(r.commit, "train.py")), r))
            except (SourceError, GitError):
                continue
        if isinstance(self.proposer, OptunaProposer):
            first = next((r for r in rows if r.proposer == "baseline" and r.commit), None)
            if first is not None:
                self.proposer.prepare(self.ws.repo.show(first.commit, "train.py"))
        self.proposer.bootstrap(history)

    def run_round(self, k: int) -> list[LedgerRow]:
        """Ask for `k` proposals, run the accepted ones concurrently, record all."""
        assert self.proposer is not None
        self._bootstrap()
        repo = self.ws.repo
        rows = self._rows()
        inc = best_row(rows)
        if inc is None:
            raise WorkspaceError("no baseline yet")
        inc_source = repo.show(inc.commit, "train.py")
        program = (self.ws.path / "program.md").read_text(encoding="utf-8")
        trial = self.ws.ledger.next_trial()
        cands: list[Candidate] = []
        recorded: list[LedgerRow] = []
        for _ in range(k):
            ctx = Context(trial, inc_source, inc, rows, program, self.last_failure)
            try:
                prop = self.proposer.propose(ctx)
                vet_train_source(prop.source)
            except (Rejected, SourceError) as err:
                row = LedgerRow(
                    trial=trial,
                    parent=inc.commit,
                    proposer=self.proposer.name,
                    status="rejected",
                    description=str(err)[:500],
                )
                self.ws.ledger.append(row)
                recorded.append(row)
                self.progress.row(row, inc)
                trial += 1
                continue
            msg = f"trial {trial} [{self.proposer.name}]: {prop.description}"
            commit = repo.commit_file(inc.commit, "train.py", prop.source, msg)
            repo.set_ref(f"refs/trials/{trial}", commit)
            cands.append(
                Candidate(trial, commit, inc.commit, self.proposer.name, prop.description, prop)
            )
            trial += 1
        if cands:
            self.ws.write_pending(
                [{k: v for k, v in c.__dict__.items() if k != "proposal"} for c in cands]
            )
            recorded += self._run_round(cands)
        elif recorded:
            self._plot()
        return recorded

    def _heal_ledger(self) -> None:
        """Verify the ledger's hash chain; move bad lines aside and say so (never stops)."""
        report = self.ws.ledger.heal()
        if report:
            print(f"warning: ledger: {report}", file=sys.stderr, flush=True)

    def preflight(self) -> None:
        """Checks that need no lock, so bad input fails before anything is written."""
        if self.sandbox == "none":
            print(sandboxing.NO_SANDBOX_WARNING, file=sys.stderr, end="", flush=True)
        elif self.backend == "local":  # Ray workers check their own (a crash row says why)
            try:
                sandboxing.require()
            except sandboxing.SandboxUnavailable as err:
                raise WorkspaceError(str(err)) from None
        self.ws.require_clean()
        if self.backend == "local":  # `cuda` without a GPU here: refuse before any trial
            resolve_device(self.ws.config.device)
        if self.proposer is not None:
            self.proposer.check()

    def run(self, trials: int | None = None, hours: float | None = None) -> LedgerRow | None:
        """Resume, baseline if needed, then rounds until `trials` or `hours`; the best row."""
        deadline = time.monotonic() + hours * 3600 if hours else math.inf
        self.preflight()
        with self.ws.run_lock(), self.progress:
            self.ws.require_clean()
            self.ws.check_harness()  # `research trial` rejects frozen-file commits as rows
            self.resume()
            if best_row(self._rows()) is None:
                row = self.run_baseline()
                if row.status != "baseline":
                    raise WorkspaceError(
                        f"the baseline ended with status '{row.status}'; see "
                        f"{self.ws.trial_dir(row.trial)}/failure.log"
                    )
                from robo_agent.core.research_health import warnings

                for text in warnings(self._rows(), self.ws.config.budget_steps, 1):
                    self.progress.note(f"warning: {text}")  # e.g. a baseline near 0
            while time.monotonic() < deadline:
                remaining = math.inf if trials is None else trials - self.trials_done()
                if remaining <= 0:
                    break
                self.run_round(int(min(self.parallel, remaining)))
            self.wait_for_plot()
        return best_row(self._rows())

    def run_external(self) -> LedgerRow:
        """`research trial`: run the committed train.py (HEAD) once as a trial."""
        repo = self.ws.repo
        self.preflight()
        with self.ws.run_lock(), self.progress:
            self.ws.require_clean()
            self._heal_ledger()
            rows = self._rows()
            inc = best_row(rows)
            head = repo.head()
            trial = self.ws.ledger.next_trial()
            if inc is None:
                return self.run_baseline()
            if head == inc.commit:
                raise WorkspaceError(
                    f"HEAD is the incumbent (trial {inc.trial}); commit a change to train.py first"
                )
            changed = repo.changed_files(inc.commit, head)
            frozen = [f for f in changed if f != "train.py"]
            problem = ""
            if frozen:
                problem = f"changes files other than train.py: {', '.join(frozen)}"
            elif not repo.is_ancestor(inc.commit, head):
                problem = f"HEAD does not descend from the incumbent {inc.commit[:8]}"
            else:
                try:
                    vet_train_source(repo.show(head, "train.py"))
                except SourceError as err:
                    problem = str(err)
            repo.set_ref(f"refs/trials/{trial}", head)
            if problem:
                row = LedgerRow(
                    trial=trial,
                    commit=head,
                    parent=inc.commit,
                    proposer="external",
                    status="rejected",
                    description=problem[:500],
                )
                self.ws.ledger.append(row)
                repo.reset_hard(inc.commit)
                self._plot()
                self.wait_for_plot()
                return row
            cand = Candidate(trial, head, inc.commit, "external", repo.subject(head))
            self.ws.write_pending([cand.__dict__ | {"proposal": None}])
            row = self._run_round([cand])[0]
            if row.status != "keep":
                repo.reset_hard(inc.commit)  # discarded: back to the incumbent
            self.wait_for_plot()
            return row
