"""The research budget: a fixed number of env steps makes a run repeatable under load,
and the CPU-seconds cap stops a run that would use more.

Real train.py processes (tiny budgets); the load is a real busy-looping process.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from robo_agent.autoresearch.evaluate import parse_summary

TRAIN = Path(__file__).resolve().parents[2] / "autoresearch" / "train.py"
pytestmark = pytest.mark.research


def _train(out: Path, *flags: str) -> dict[str, float]:
    cmd = [sys.executable, str(TRAIN), "--seed", "3", "--out", str(out), "--log-seconds", "1000",
           *flags]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return parse_summary(proc.stdout)


def _digest(out: Path) -> str:
    return hashlib.sha256((out / "artifact" / "policy.onnx").read_bytes()).hexdigest()


@pytest.mark.slow  # two training runs, one beside a busy core: ~20-60 s here
def test_same_seed_and_steps_give_the_same_policy_with_a_core_kept_busy(tmp_path: Path) -> None:
    flags = ("--budget-steps", "640", "--budget-seconds", "120", "--learning-starts", "200")
    quiet = _train(tmp_path / "quiet", *flags)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = _train(tmp_path / "loaded", *flags)
    finally:
        busy.kill()
        busy.wait()
    assert quiet["env_steps"] == loaded["env_steps"] == 640
    assert quiet["updates"] == loaded["updates"] > 0
    assert _digest(tmp_path / "quiet") == _digest(tmp_path / "loaded")
    assert 0 < quiet["cpu_seconds"] < 120


@pytest.mark.slow  # one training run to its 12 CPU-s cap: ~10-20 s here
def test_the_cpu_cap_stops_a_run_before_its_steps(tmp_path: Path) -> None:
    summary = _train(tmp_path / "capped", "--budget-steps", "10000000", "--budget-seconds", "12")
    # 12 CPU-s: imports and env start-up alone take 3-5 CPU-s on a loaded 2-core machine
    assert 0 < summary["env_steps"] < 10_000_000
    assert 10.0 <= summary["cpu_seconds"] <= 13.0  # stops save_reserve (1 s) before the cap
