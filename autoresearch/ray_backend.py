"""Run research jobs as Ray tasks (`--backend ray [--address ADDR]`).

Each task gets the candidate as data — its commit id and its `train.py` text, the only
file a candidate may change — trains and evaluates in a scratch folder on the worker
with exactly the code path of a local run (`execute.run_job`), and returns the summary,
the log tails and the artifact's files as bytes. The driver writes them into the
workspace's `.research/trials/<n>/` folders, so the workspace stays the single source of
truth and the ledger is written only by the driver.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robo_agent.autoresearch.execute import Job, JobResult, Phase, run_job

ARTIFACT_FILES = ("policy.onnx", "policy.json")


def _remote_job(job_data: dict[str, Any]) -> dict[str, Any]:
    """Body of the Ray task: run the job in a scratch folder, ship the results back."""
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
    return {"result": result.to_dict(), "files": files, "node": os.uname().nodename}


def run_jobs_ray(
    jobs: list[Job], folders: list[Path], address: str | None, on_phase: Phase | None = None
) -> list[JobResult]:
    """Submit one Ray task per job (1 CPU each) and collect them into `folders`."""
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(_remote_job)
    refs = []
    for job in jobs:
        if on_phase:
            on_phase(job.trial, 0, "ray task")
        refs.append(remote.remote(asdict(job)))
    results: list[JobResult] = []
    for job, folder, ref in zip(jobs, folders, refs, strict=True):
        payload = ray.get(ref)
        for rep, files in payload["files"].items():
            for rel, data in files.items():
                target = folder / rep / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        results.append(JobResult.from_dict(payload["result"]))
        if on_phase:
            on_phase(job.trial, -1, "done")
    return results
