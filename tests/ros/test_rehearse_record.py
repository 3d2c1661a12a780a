"""`robo-agent rehearse --record`: a headless user can watch the rehearsal's ROS episodes.

Real processes throughout: the CLI starts sim_robot (which renders and publishes its camera
on the robot description's camera topic) and a policy_runner over DDS in a private domain;
the frames come from that topic. The policy is a hand-built constant ONNX artifact (it
always pushes the same joints), so the arm visibly moves; whether the rehearsal passes is
not the point here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from policy_artifacts import constant_artifact
from robo_agent.sim.record import ffmpeg_exe

REHEARSE = [sys.executable, "-m", "robo_agent.cli", "rehearse"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return constant_artifact(tmp_path_factory.mktemp("record") / "pushy",
                             [0.8, 0.6, 0.0, 0.6, 0.0, 0.0, 0.0])


def _frames(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


@pytest.mark.slow
def test_rehearsal_frames_show_the_arm_moving(artifact: Path, tmp_path: Path) -> None:
    out = subprocess.run([*REHEARSE, str(artifact), "--episodes", "1", "--json", "--record",
                          str(tmp_path / "frames"), "--record-size", "96x72"],
                         capture_output=True, text=True, timeout=280)
    assert out.returncode in (0, 1), out.stderr[-3000:]  # passed or not: both are results
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["recording"].startswith("recorded "), result["recording"]
    frames = _frames(tmp_path / "frames")
    n = int(result["recording"].split()[1])
    # One episode is the runner's start (1-3 s, more on a loaded machine) and 50 control
    # steps at 25 Hz (2 s): 20 to 50 frames at 10 fps; the homing before it is not recorded.
    assert n == len(frames) and 15 <= n <= 150, result["recording"]
    assert all(f.shape == (72, 96, 3) for f in frames)
    for f in (frames[0], frames[-1]):
        # a blank frame (the EGL plugin's one uniform colour on a GPU-less machine) has 1;
        # the scene at 96x72 has 48-75, fewer the more of the view the arm covers
        colours = len(np.unique(f.reshape(-1, 3), axis=0))
        assert colours >= 10, f"{colours} colours: a blank frame, not the scene"
        assert f.std() > 10
    changed = np.abs(frames[-1].astype(int) - frames[0].astype(int)).max(axis=2) > 30
    assert changed.mean() > 0.005, "the arm did not move between the first and last frame"


def test_a_bad_record_target_fails_before_anything_runs(artifact: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cases = [(["--record", str(tmp_path / "no" / "such" / "out.gif")], "does not exist"),
             (["--record", str(tmp_path / "file")], "is not a folder"),
             (["--record", str(tmp_path / "x.gif"), "--record-size", "5x5"], "frame size"),
             (["--record", str(tmp_path / "x.gif"), "--record-fps", "0"], "--record-fps")]
    if ffmpeg_exe() is None:  # the sim extra's imageio-ffmpeg brings one: usually skipped
        cases.append((["--record", str(tmp_path / "x.mp4")], "needs ffmpeg"))
    for extra, needle in cases:
        out = subprocess.run([*REHEARSE, str(artifact), "--episodes", "1", *extra],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and needle in out.stderr, (extra, out.stderr[-2000:])
        assert "direct:" not in out.stdout  # no episode ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert not (artifact / "rehearsal.json").exists()
