"""`--backend ray`: trials run as Ray tasks on a local Ray instance (2 CPUs); the driver
writes their artifacts and ledger rows into the workspace."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from robo_agent.autoresearch.proposers import RandomProposer
from robo_agent.autoresearch.runner import Runner
from robo_agent.autoresearch.workspace import Workspace

from robo_agent.policy import OnnxPolicy

pytestmark = [pytest.mark.research, pytest.mark.slow]


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    # a short private temp dir: Ray's socket paths must stay under 108 bytes
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def test_two_candidates_as_ray_tasks(workspace: Path, local_ray: None) -> None:
    ws = Workspace(workspace)
    runner = Runner(ws, RandomProposer(seed=1), parallel=2, backend="ray", live=False)
    runner.run(trials=2)
    rows = ws.ledger.rows()
    assert [r.trial for r in rows] == [0, 1, 2]
    for row in rows[1:]:
        assert row.proposer == "random" and row.status in ("keep", "discard"), row.description
        artifact = ws.artifact_dir(row.trial, 0)
        policy = OnnxPolicy(artifact)  # shipped back from the worker, sha256 intact
        assert policy.spec.provenance.workspace_commit == row.commit
        assert policy.spec.provenance.score == pytest.approx(row.score)
        assert (ws.trial_dir(row.trial) / "r0" / "train.log").stat().st_size > 0
    assert ws.repo.dirty_files() == []
