"""`robo-agent sim --record`: headless runs a person can watch (GIF, PNG frames, MP4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.sim
SIM = [sys.executable, "-m", "robo_agent.cli", "sim", "--task", "reach", "--episodes", "1"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIM, *args], capture_output=True, text=True, timeout=120)


def test_gif_shows_the_arm_moving(tmp_path: Path) -> None:
    from PIL import Image

    out = _run("--record", str(tmp_path / "run.gif"), "--record-size", "96x72",
               "--record-every", "5")
    assert out.returncode == 0, out.stderr
    assert "recorded 10 frames" in out.stdout
    gif = Image.open(tmp_path / "run.gif")
    frames, duration_ms = [], 0
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
        duration_ms += gif.info["duration"]
    # Pillow merges identical consecutive frames (the arm at rest) into one longer frame:
    # the play time, not the frame count, says all 10 frames are there.
    assert 2 <= len(frames) <= 10 and frames[0].shape == (72, 96, 3)
    assert duration_ms == 10 * round(1000 / (25 / 5))
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) >= 20  # a scene, not a blank
    moved = np.abs(frames[-1].astype(int) - frames[0].astype(int)).max(axis=2) > 30
    assert moved.mean() > 0.005  # the arm reached for the goal


def test_png_folder_and_bad_targets(tmp_path: Path) -> None:
    out = _run("--record", str(tmp_path / "frames"), "--record-size", "32x24",
               "--record-every", "25")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        "frame_00000.png", "frame_00001.png"]
    (tmp_path / "file").write_text("x")
    bad = _run("--record", str(tmp_path / "file"))
    assert bad.returncode == 2 and "is not a folder" in bad.stderr
    size = _run("--record", str(tmp_path / "x.gif"), "--record-size", "5x5")
    assert size.returncode == 2 and "frame size" in size.stderr


def test_mp4_through_the_bundled_ffmpeg(tmp_path: Path) -> None:
    import imageio_ffmpeg

    out = _run("--record", str(tmp_path / "run.mp4"), "--record-size", "64x48",
               "--record-every", "5")
    assert out.returncode == 0, out.stderr
    frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "run.mp4"))
    assert frames == 10


def test_mp4_without_any_ffmpeg_is_refused_before_writing(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Stand-in: the sim extra always brings imageio-ffmpeg here, so "no ffmpeg anywhere"
    # can only be simulated by making the lookup find none.
    from robo_agent.sim import record

    monkeypatch.setattr(record, "ffmpeg_exe", lambda: None)
    with pytest.raises(record.RecordError, match="needs ffmpeg"):
        record.Recorder(tmp_path / "x.mp4", fps=10)
    assert not (tmp_path / "x.mp4").exists()
