"""Train and evaluate one candidate: `train.py` in a subprocess, then the frozen evaluator.

`run_job` is the unit of work of the research loop, run on a local thread or as a Ray
task. It needs only the candidate's `train.py` text and the frozen settings, so a Ray
worker can run it from a scratch folder. For each repeat (training seed) it

1. runs `python train.py --task T --seed S --budget-seconds B --out DIR` in a new
   session, polling the process tree's resident memory and CPU time, and kills the
   whole group when its CPU time passes `B + grace` or its wall-clock passes
   `wall_factor * B + grace` (status `timeout`); B is CPU seconds of the tree, so
   other people's load on the machine changes how long a trial takes, not its score;
2. runs `python -m robo_agent.autoresearch.evaluate` on the artifact in another
   process (status `crash` if `train.py` failed or left no valid artifact);
3. stamps the artifact's provenance with the evaluation it got.

Children get `PR_SET_PDEATHSIG=SIGKILL`, so a runner killed with `kill -9` takes its
training processes with it instead of leaving them to compete for the CPU.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from robo_agent.autoresearch.sandbox import Sandbox, SandboxUnavailable

from robo_agent.core.artifact import ArtifactError, load_spec, with_provenance, write_spec
from robo_agent.core.research_decision import wants_more_seeds

LOG_TAIL_LINES = 40
EVAL_TIMEOUT = 600.0
Phase = Callable[[int, int, str], None]  # (trial, repeat, phase) -> None


@dataclass
class Job:
    """One candidate: its source and the frozen settings it is trained and scored under."""

    trial: int
    commit: str
    source: str
    task: str
    budget_seconds: float  # CPU seconds of train.py's process tree (a cap)
    grace_seconds: float
    train_seeds: list[int]
    eval_seed_base: int
    eval_episodes: int
    domain_randomization: bool = False
    device: str = "auto"
    torch_threads: int = 1
    eval_workers: int = 2
    sandbox: str = "bwrap"  # bwrap | none (--no-sandbox); see sandbox.py
    memory_limit_mb: float = 8192.0
    wall_factor: float = 4.0  # wall-clock limit = wall_factor * budget + grace
    budget_steps: int = 0  # env steps per run (0: train until the CPU budget)
    # racing (research_decision.wants_more_seeds): after `repeats` seeds, more seeds of
    # `train_seeds` only while the call is close; None: every seed of `train_seeds`
    race: dict[str, Any] | None = None
    # repeats trained side by side (the seeds every candidate needs); set from the cores
    # by the runner: an execution detail, it never changes a score
    parallel_repeats: int = 1


@dataclass
class RepeatResult:
    seed: int
    status: str  # ok | crash | timeout
    score: float = float("nan")
    final_distance: float = float("nan")
    smoothness: float = float("nan")
    train_seconds: float = float("nan")
    cpu_seconds: float = float("nan")
    env_steps: int = 0
    peak_mem_mb: float = float("nan")
    eval_seconds: float = float("nan")
    log_tail: str = ""


@dataclass
class JobResult:
    trial: int
    commit: str
    repeats: list[RepeatResult] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def status(self) -> str:
        states = {r.status for r in self.repeats}
        if "timeout" in states:
            return "timeout"
        if "crash" in states or not self.repeats:
            return "crash"
        return "ok"

    @property
    def scores(self) -> list[float]:
        return [r.score for r in self.repeats if r.status == "ok"]

    def failure_tail(self) -> str:
        for r in self.repeats:
            if r.status != "ok":
                return r.log_tail
        return ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        reps = [RepeatResult(**r) for r in data.get("repeats", [])]
        return cls(data["trial"], data["commit"], reps, data.get("wall_seconds", 0.0))


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the thread that started it dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _tree_usage(pid: int, cpu_seen: dict[int, float]) -> tuple[float, float]:
    """(resident MB, CPU seconds) of the process tree under `pid`.

    `cpu_seen` keeps each process's last CPU reading, so a child that exits between
    polls still counts with what it had used."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0, sum(cpu_seen.values())
    total = 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                times = p.cpu_times()
            cpu_seen[p.pid] = times.user + times.system
        except psutil.Error:
            continue
    return total / 2**20, sum(cpu_seen.values())


def _reap(proc: subprocess.Popen) -> float | None:
    """Non-blocking wait; the CPU seconds of the finished tree (itself and every
    descendant it waited for), or None while it runs."""
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # Small MLPs: one BLAS/OpenMP thread per process; K parallel trials share the cores.
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def train_once(job: Job, seed: int, folder: Path) -> RepeatResult:
    """Run train.py once in `folder`; returns status, timings and peak memory."""
    from robo_agent.autoresearch.evaluate import parse_summary

    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "train.py"
    script.write_text(job.source, encoding="utf-8")
    log_path = folder / "train.log"
    cmd = [
        sys.executable,
        str(script),
        "--task", job.task,
        "--seed", str(seed),
        "--budget-seconds", str(job.budget_seconds),
        "--budget-steps", str(job.budget_steps),
        "--out", str(folder),
        "--device", job.device,
        "--torch-threads", str(job.torch_threads),
    ]  # fmt: skip
    try:
        box = Sandbox(job.sandbox, folder, job.memory_limit_mb, gpu=job.device != "cpu")
    except SandboxUnavailable as err:
        return RepeatResult(seed=seed, status="crash", log_tail=f"[runner] {err}")
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            box.wrap(cmd),
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=box.env(_child_env(job.torch_threads)),
            start_new_session=True,
            preexec_fn=box.preexec(_die_with_parent),
        )
    peak, cpu, cpu_seen = 0.0, 0.0, {}
    wall_deadline = start + job.wall_factor * job.budget_seconds + job.grace_seconds
    cpu_limit = job.budget_seconds + job.grace_seconds
    timed_out = ""
    over_memory = False
    while (finished := _reap(proc)) is None:
        rss, cpu = _tree_usage(proc.pid, cpu_seen)
        peak = max(peak, rss)
        over_memory = box.over_memory(peak)
        over_wall = time.monotonic() > wall_deadline
        if over_memory or over_wall or cpu > cpu_limit:
            if not over_memory:
                timed_out = (
                    f"wall-clock {time.monotonic() - start:.1f} s > {job.wall_factor:g} x budget "
                    f"{job.budget_seconds:g} s + grace {job.grace_seconds:g} s"
                    if over_wall
                    else f"CPU {cpu:.1f} s > budget {job.budget_seconds:g} s + grace "
                    f"{job.grace_seconds:g} s"
                )
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.1)
    else:
        cpu = max(cpu, finished)
    wall = time.monotonic() - start
    unsafe = box.finish()  # before the runner reads anything the candidate wrote
    result = RepeatResult(seed=seed, status="ok", train_seconds=wall, cpu_seconds=round(cpu, 2),
                          peak_mem_mb=round(peak, 1))  # fmt: skip
    printed = parse_summary(_tail(log_path, 20))
    result.env_steps = int(printed.get("env_steps", 0))
    if over_memory or unsafe:
        result.status = "crash"
        result.log_tail = _tail(log_path) + (
            f"\n[runner] killed: the process tree used {peak:.0f} MB, over the "
            f"{job.memory_limit_mb:g} MB memory limit" if over_memory else
            f"\n[runner] train.py left symlinks or special files (removed): {', '.join(unsafe)}"
        )  # fmt: skip
    elif timed_out:
        result.status = "timeout"
        result.log_tail = _tail(log_path) + f"\n[runner] killed: {timed_out}"
    elif proc.returncode != 0:
        result.status = "crash"
        result.log_tail = _tail(log_path) + f"\n[runner] train.py exited with {proc.returncode}"
    else:
        try:
            load_spec(folder / "artifact", verify=True)
        except ArtifactError as err:
            result.status = "crash"
            result.log_tail = _tail(log_path) + f"\n[runner] no valid artifact: {err}"
    return result


def start_evaluator(job: Job, folder: Path) -> subprocess.Popen:
    """Start the frozen evaluator now; it builds its envs and waits for 'go' on stdin.

    Started alongside training, so its start-up (imports, sim workers) is off the
    critical path; it reads nothing until told, and then only the artifact. The secret
    seed base travels on its stdin with 'go', never on a command line.
    """
    cmd = [
        sys.executable, "-m", "robo_agent.autoresearch.evaluate",
        "--artifact", str(folder / "artifact"),
        "--task", job.task,
        "--episodes", str(job.eval_episodes),
        "--workers", str(job.eval_workers),
        "--wait",
    ] + (["--domain-randomization"] if job.domain_randomization else [])  # fmt: skip
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(1),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def cancel_evaluator(proc: subprocess.Popen) -> None:
    try:
        proc.communicate(input="", timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def evaluate_once(
    job: Job, result: RepeatResult, folder: Path, proc: subprocess.Popen | None = None
) -> None:
    """Score `folder/artifact` with the (pre-started) evaluator process; updates `result`."""
    from robo_agent.autoresearch.evaluate import parse_summary

    proc = proc or start_evaluator(job, folder)
    try:
        stdout, stderr = proc.communicate(input=f"go {job.eval_seed_base}\n", timeout=EVAL_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        result.status, result.log_tail = "crash", f"[runner] evaluation exceeded {EVAL_TIMEOUT} s"
        return
    summary = parse_summary(stdout)
    if proc.returncode != 0 or "score" not in summary:
        result.status = "crash"
        result.log_tail = (stdout + stderr)[-4000:] + "\n[runner] evaluation failed"
        return
    result.score = summary["score"]
    result.final_distance = summary.get("final_distance", float("nan"))
    result.smoothness = summary.get("smoothness", float("nan"))
    result.eval_seconds = summary.get("eval_seconds", float("nan"))
    spec = load_spec(folder / "artifact")
    stamped = with_provenance(
        spec,
        workspace_commit=job.commit,
        trial=job.trial,
        score=result.score,
        evaluation_episodes=job.eval_episodes,
        training_seconds=spec.provenance.training_seconds or result.train_seconds,
        env_steps=result.env_steps or spec.provenance.env_steps,
    )
    write_spec(folder / "artifact", stamped)


def _repeat(job: Job, folder: Path, k: int, seed: int, on_phase: Phase | None) -> RepeatResult:
    """Train and score repeat `k` (training seed `seed`) under `folder/r<k>/`."""
    rep_dir = folder / f"r{k}"
    if on_phase:
        on_phase(job.trial, k, "train")
    rep_dir.mkdir(parents=True, exist_ok=True)
    evaluator = start_evaluator(job, rep_dir)
    result = train_once(job, seed, rep_dir)
    if result.status == "ok":
        if on_phase:
            on_phase(job.trial, k, "evaluate")
        evaluate_once(job, result, rep_dir, evaluator)
    else:
        cancel_evaluator(evaluator)
    return result


def run_job(job: Job, folder: str | Path, on_phase: Phase | None = None) -> JobResult:
    """All repeats of one candidate under `folder/r<k>/`.

    The seeds every candidate trains on whatever they score (all of them for the
    baseline, `repeats` under racing) run `job.parallel_repeats` at a time. The racing
    seeds after them are asked for one by one, each only while the call is still close,
    but trained `parallel_repeats` at a time too: speculatively, a result the race turns
    out not to need is dropped (its folder removed). A run's score depends on its seed and
    steps alone, so running side by side changes the wall-clock, never the ledger: the
    repeats are recorded in seed order, a race stops at the same seed, and a crash ends
    the job at that seed exactly as one after another would have.
    """
    folder = Path(folder)
    start = time.monotonic()
    out = JobResult(job.trial, job.commit)
    seeds = list(enumerate(job.train_seeds))
    first = len(seeds) if job.race is None else min(int(job.race["repeats"]), len(seeds))
    width = max(1, min(job.parallel_repeats, first))
    race_width = max(1, job.parallel_repeats)
    rest = seeds[first:]
    batch = seeds[:first]
    with ThreadPoolExecutor(max_workers=max(width, race_width)) as pool:
        while batch:
            done = list(pool.map(lambda ks: _repeat(job, folder, *ks, on_phase), batch))
            for (k, _), result in zip(batch, done, strict=True):
                if not _still_wanted(job, out):
                    shutil.rmtree(folder / f"r{k}", ignore_errors=True)  # speculative, unused
                    continue
                out.repeats.append(result)
            batch, rest = rest[:race_width], rest[race_width:]
            if not _still_wanted(job, out):
                break
    out.wall_seconds = time.monotonic() - start
    if on_phase:
        on_phase(job.trial, -1, "done")
    return out


def _still_wanted(job: Job, out: JobResult) -> bool:
    """Whether the next seed's result counts: none after a crash (a crashing candidate is
    not worth its other seeds), none once a race is decided (a clear winner or loser, or
    out of seeds)."""
    if out.repeats and out.repeats[-1].status != "ok":
        return False
    if job.race is not None and out.repeats and len(out.repeats) >= int(job.race["repeats"]):
        return wants_more_seeds(out.scores, **job.race)
    return True


def run_jobs_locally(
    jobs: list[Job], folders: list[Path], on_phase: Phase | None = None
) -> list[JobResult]:
    """Run jobs concurrently, one thread (and one training process) per job."""
    results: list[JobResult | None] = [None] * len(jobs)

    def work(i: int) -> None:
        results[i] = run_job(jobs[i], folders[i], on_phase)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]
