"""`bench/gpu.sh` runs end to end on a machine without a GPU and says so (the CUDA parts
are for a GPU machine; no GPU was available where this was written)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.research, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
torch = pytest.importorskip("torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_gpu_bench_without_a_gpu_says_so_and_measures_the_cpu(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "--quick", "--record-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "NO GPU" in out and "cpu :" in out and "trials/hour" in out, out
    (record,) = tmp_path.glob("gpu-*.json")
    data = json.loads(record.read_text())
    assert data["commit"] and data["command"] == "bash bench/gpu.sh --quick"
    figures = data["figures"]
    assert "cuda_env_steps_per_s" not in figures
    assert "cpu only" in figures["gpu"] and figures["research_trials_per_hour"] > 0
    assert [r["id"] for r in data["rows"]] == ["gpu 1"]
    assert "no GPU" in data["rows"][0]["measured"]
