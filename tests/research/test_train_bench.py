"""`bench/train.py` runs both trainers end to end (tiny budgets) and writes a record whose
row the summary can render: ours' wall and CPU time, SB3 with the zoo's settings
(VecNormalize included) scored with the statistics it trained with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.research, pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("stable_baselines3")
pytest.importorskip("panda_gym")


def test_train_bench_writes_a_record_the_summary_renders(tmp_path: Path) -> None:
    env = {**os.environ, "ROBO_AGENT_BENCH_RECORDS": str(tmp_path)}
    cmd = [sys.executable, str(ROOT / "bench" / "train.py"), "--budget", "6",
           "--checkpoint-seconds", "2", "--sb3-steps", "1200", "--sb3-every", "600",
           "--episodes", "3", "--seed", "1", "--json", str(tmp_path / "out.json")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    curve = result["sb3"]["curve"]
    assert [p["steps"] for p in curve] == [600, 1200]
    assert all(p["cpu_s"] > 0 and p["s"] > 0 for p in curve), curve
    assert all(p["cpu_s"] > 0 for p in result["ours"]["curve"])
    assert set(result["load"]) == {"before", "after_ours", "after_sb3"}

    (record,) = tmp_path.glob("train-*.json")
    data = json.loads(record.read_text())
    figures = data["figures"]
    assert figures["sb3_step_cap"] == 1200 and len(figures["load_before"]) == 3
    (row,) = data["rows"]
    assert row["id"] == "research 1" and "FetchReach-v1" in row["measured"]
    assert "VecNormalize" in row["measured"]
    sys.path.insert(0, str(ROOT / "bench"))
    from summary import _row

    rendered = _row(record.name, data, row)  # every figure the row names exists
    assert "seed 1" in rendered["measured"]
