"""The frozen evaluator: same episodes in-process and on sim workers; refuses bad artifacts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from robo_agent.autoresearch.evaluate import evaluate, parse_summary

from robo_agent.core.artifact import ArtifactError

pytestmark = pytest.mark.research

SEEDS = list(range(1_000_000_000, 1_000_000_006))


@pytest.mark.slow
def test_vector_and_single_env_give_identical_episodes(baseline_workspace: Path) -> None:
    artifact = baseline_workspace / ".research" / "trials" / "0000" / "r0" / "artifact"
    task = "robo_agent/PandaReach-v0"
    single = evaluate(artifact, task, SEEDS, workers=1)
    vector = evaluate(artifact, task, SEEDS, workers=2)
    for key in ("score", "final_distance", "smoothness", "episodes"):
        assert vector[key] == pytest.approx(single[key], abs=1e-6), key
    assert single["episodes"] == len(SEEDS)


@pytest.mark.slow
def test_wrong_task_and_tampered_artifact_are_refused(
    baseline_workspace: Path, tmp_path: Path
) -> None:
    artifact = tmp_path / "artifact"
    shutil.copytree(
        baseline_workspace / ".research" / "trials" / "0000" / "r0" / "artifact", artifact
    )
    with pytest.raises(ArtifactError, match="trained on robo_agent/PandaReach-v0"):
        evaluate(artifact, "robo_agent/IiwaReach-v0", SEEDS[:1])
    spec = json.loads((artifact / "policy.json").read_text())
    spec["model_sha256"] = "0" * 64
    (artifact / "policy.json").write_text(json.dumps(spec))
    proc = subprocess.run(
        [sys.executable, "-m", "robo_agent.autoresearch.evaluate", "--artifact", str(artifact),
         "--task", "robo_agent/PandaReach-v0", "--seed-base", "1000000000", "--episodes", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "sha256" in proc.stderr
    assert "score" not in parse_summary(proc.stdout)


@pytest.mark.slow
def test_domain_randomisation_runs_and_changes_the_episodes(baseline_workspace: Path) -> None:
    artifact = baseline_workspace / ".research" / "trials" / "0000" / "r0" / "artifact"
    task = "robo_agent/PandaReach-v0"
    nominal = evaluate(artifact, task, SEEDS[:3], workers=1)
    randomised = evaluate(artifact, task, SEEDS[:3], domain_randomization=True, workers=1)
    vector = evaluate(artifact, task, SEEDS[:3], domain_randomization=True, workers=2)
    assert randomised["final_distance"] != pytest.approx(nominal["final_distance"], abs=1e-9)
    assert vector["final_distance"] == pytest.approx(randomised["final_distance"], abs=1e-6)


def test_parse_summary_ignores_other_lines() -> None:
    text = "t=1.0s steps=3\nscore: 0.5\nnoise: here\nfinal_distance: 0.01\nscore: 0.75\n"
    assert parse_summary(text) == {"score": 0.75, "final_distance": 0.01}
