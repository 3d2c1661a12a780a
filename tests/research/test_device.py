"""`--device cpu|cuda|cuda:N|auto`: stored in research.yaml, passed to train.py, and a GPU
asked for on a machine without one is refused before anything runs.

This machine has no GPU (a CPU-only torch): the CUDA path itself is exercised by
`bench/gpu.sh` on a GPU machine; here the tests check the plumbing and the refusals.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from research_settings import BUDGET, TASK, TINY
from robo_agent.autoresearch import devices
from robo_agent.autoresearch.execute import Job, train_once
from robo_agent.autoresearch.workspace import TEMPLATE_DIR

from robo_agent.cli import main

pytestmark = pytest.mark.research

torch = pytest.importorskip("torch")
NO_GPU = not torch.cuda.is_available()


def _yaml(ws: Path) -> dict:
    return yaml.safe_load((ws / "research.yaml").read_text())


def test_init_stores_the_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["research", "init", str(tmp_path / "a"), "--device", "cpu"]) == 0
    assert _yaml(tmp_path / "a")["device"] == "cpu"
    assert "device cpu" in capsys.readouterr().out
    assert main(["research", "init", str(tmp_path / "b")]) == 0
    assert _yaml(tmp_path / "b")["device"] == "auto"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "CPU", ""])
def test_bad_device_is_refused_and_creates_nothing(
    tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["research", "init", str(tmp_path / "ws"), "--device", bad]) == 2
    assert "device" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_is_refused_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    assert main(["research", "init", str(ws), "--device", "cuda", "--budget", "5"]) == 0
    before = (ws / "results.tsv").read_text() if (ws / "results.tsv").exists() else ""
    assert main(["research", "run", str(ws), "--quiet", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert "cuda" in err and "torch sees cpu only" in err and "--device auto" in err, err
    after = (ws / "results.tsv").read_text() if (ws / "results.tsv").exists() else ""
    assert after == before  # no baseline row: nothing ran
    assert devices.resolve("auto") == "cpu"


@pytest.mark.slow
@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a CUDA GPU")
def test_device_reaches_train_py(tmp_path: Path) -> None:
    """train.py gets the job's device: asked for cuda on a CPU-only torch, it fails on it."""
    job = Job(trial=0, commit="", source=(TEMPLATE_DIR / "train.py").read_text(), task=TASK,
              budget_seconds=BUDGET, grace_seconds=TINY["grace_seconds"] + 60, train_seeds=[0],
              eval_seed_base=1_000_000_000, eval_episodes=1, device="cuda")  # fmt: skip
    result = train_once(job, 0, tmp_path / "r0")
    assert result.status == "crash", result.log_tail
    assert "cuda" in result.log_tail.lower(), result.log_tail
