"""Run research jobs as Ray tasks (`--backend ray [--address ADDR]`).

Each task gets the candidate as data — its commit id and its `train.py` text, the only
file a candidate may change — trains and evaluates in a scratch folder on the worker
with exactly the code path of a local run (`execute.run_job`), and returns the summary,
the log tails and the artifact's files as bytes. The driver writes them into the
workspace's `.research/trials/<n>/` folders, so the workspace stays the single source of
truth and the ledger is written only by the driver.

A node (or task worker) that dies mid-trial does not end the run: the trial is submitted
once more, and Ray places it on a live node; if that fails too, or no live node with a
CPU is left, the trial is recorded as `crash` with the reason. A trial whose
own code raised is not retried (it would raise again). Each trial's attempts, with the
node that ran them, are written to `.research/trials/<n>/ray.log`. The processes of a
trial on a dead node die with it: `train.py` and the evaluator carry `PR_SET_PDEATHSIG`
from `execute`, and so do their sim workers (`sim/vector.py`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robo_agent.autoresearch.execute import Job, JobResult, Phase, RepeatResult, run_job

ARTIFACT_FILES = ("policy.onnx", "policy.json")
RETRIES = 1  # per trial, after a node or worker death
WATCH_SECONDS = 30.0  # how often a driver waiting on trials checks that a node is left


def _remote_job(job_data: dict[str, Any]) -> dict[str, Any]:
    """Body of the Ray task: run the job in a scratch folder, ship the results back."""
    import ray

    job = Job(**job_data)
    with tempfile.TemporaryDirectory(prefix=f"robo-agent-trial{job.trial}-") as tmp:
        result = run_job(job, tmp)
        files: dict[str, dict[str, bytes]] = {}
        for k in range(len(result.repeats)):
            rep = Path(tmp) / f"r{k}"
            found = {}
            for name in ARTIFACT_FILES:
                path = rep / "artifact" / name
                if path.is_file():
                    found[f"artifact/{name}"] = path.read_bytes()
            log = rep / "train.log"
            if log.is_file():
                found["train.log"] = log.read_bytes()
            files[f"r{k}"] = found
    node = f"{os.uname().nodename} {ray.get_runtime_context().get_node_id()[:12]}"
    return {"result": result.to_dict(), "files": files, "node": node}


def connect(address: str | None) -> Any:
    """`ray.init` once per process: the cluster at `address`, else a local Ray."""
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    return ray


def _live_cpu_nodes(ray: Any) -> int:
    """Alive nodes that have at least one CPU to run a trial on."""
    nodes = ray.nodes()
    return sum(1 for n in nodes if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1)


def _crashed(job: Job, reason: str) -> JobResult:
    rep = RepeatResult(seed=job.train_seeds[0], status="crash", log_tail=f"[runner] {reason}")
    return JobResult(job.trial, job.commit, [rep])


def run_jobs_ray(
    jobs: list[Job], folders: list[Path], address: str | None, on_phase: Phase | None = None
) -> list[JobResult]:
    """Submit one Ray task per job and collect them into `folders` as they finish.

    Each task takes 1 CPU; with `device: cuda` also a 1/K share of a GPU, so the K trials
    of a round can share one GPU.
    """
    ray = connect(address)
    from ray.exceptions import RayError, RayTaskError

    gpu = 1.0 / len(jobs) if jobs and jobs[0].device.startswith("cuda") else 0.0
    remote = ray.remote(_remote_job).options(num_cpus=1, num_gpus=gpu, max_retries=0)
    attempts = [0] * len(jobs)
    logs: list[list[str]] = [[] for _ in jobs]
    pending: dict[Any, int] = {}

    def submit(i: int) -> None:
        attempts[i] += 1
        if on_phase:
            on_phase(jobs[i].trial, 0, "ray task" if attempts[i] == 1 else "ray retry")
        pending[remote.remote(asdict(jobs[i]))] = i

    def finish(i: int) -> None:
        folders[i].mkdir(parents=True, exist_ok=True)
        (folders[i] / "ray.log").write_text("\n".join(logs[i]) + "\n", encoding="utf-8")
        if on_phase:
            on_phase(jobs[i].trial, -1, "done")

    for i in range(len(jobs)):
        submit(i)
    results: list[JobResult | None] = [None] * len(jobs)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=WATCH_SECONDS)
        if not ready:
            if _live_cpu_nodes(ray) == 0:  # queued work would wait forever: say so instead
                for ref, i in pending.items():
                    ray.cancel(ref, force=True)
                    logs[i].append(f"attempt {attempts[i]}: no live node with a CPU")
                    results[i] = _crashed(jobs[i], "ray: no live node with a CPU left")
                    finish(i)
                pending.clear()
            continue
        i = pending.pop(ready[0])
        job, folder = jobs[i], folders[i]
        try:
            payload = ray.get(ready[0])
        except RayTaskError as err:  # the trial's own code raised: it would raise again
            logs[i].append(f"attempt {attempts[i]}: task failed: {_last_line(err)}")
            results[i] = _crashed(job, f"ray task failed: {_last_line(err)}")
        except RayError as err:  # the node or the worker process died under the trial
            reason = f"{type(err).__name__}: {_last_line(err)}"
            logs[i].append(f"attempt {attempts[i]}: {reason}")
            if attempts[i] <= RETRIES and _live_cpu_nodes(ray) > 0:
                submit(i)
                continue
            why = "no live node with a CPU left" if attempts[i] <= RETRIES else "retried once"
            results[i] = _crashed(job, f"ray: {reason} ({why})")
        else:
            logs[i].append(f"attempt {attempts[i]}: ran on {payload['node']}")
            for rep, files in payload["files"].items():
                for rel, data in files.items():
                    target = folder / rep / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
            results[i] = JobResult.from_dict(payload["result"])
        finish(i)
    return [r for r in results if r is not None]


def _last_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(err).__name__)[:300]
