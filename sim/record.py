"""Recording camera frames of a headless run: `--record out.gif | out.mp4 | DIR`.

GIF through Pillow (already installed with matplotlib), MP4 through ffmpeg (raw RGB
frames on its stdin: the `ffmpeg` on PATH, else the one the `imageio-ffmpeg` wheel of the
`sim` extra ships), anything else is a folder of numbered PNGs. The target is
checked before the run starts, so a bad path fails fast and changes nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from robo_agent.core.png import encode_png


class RecordError(ValueError):
    """The recording target cannot be written (no ffmpeg for .mp4, a file as folder...)."""


def parse_frame_size(text: str) -> tuple[int, int]:
    """'WxH' (`--record-size`) as (width, height); RecordError outside 16..1920 x 16..1080."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise RecordError(f"frame size {text!r} is not WxH, e.g. 320x240") from None
    if not (16 <= w <= 1920 and 16 <= h <= 1080):
        raise RecordError(f"frame size {w}x{h} outside 16..1920 x 16..1080")
    return w, h


def ffmpeg_exe() -> str | None:
    """An ffmpeg to run: the one on PATH, else imageio-ffmpeg's bundled binary, else None."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the wheel's binary is missing for this platform
        return None


class Recorder:
    """Collects (h, w, 3) uint8 frames and writes them when closed."""

    def __init__(self, target: str | Path, fps: float) -> None:
        self.path = Path(target)
        self.fps = float(min(max(fps, 1.0), 50.0))
        self.kind = {".gif": "gif", ".mp4": "mp4"}.get(self.path.suffix.lower(), "png")
        self.frames = 0
        self._gif: list[np.ndarray] = []
        self._ffmpeg: subprocess.Popen[bytes] | None = None
        self._ffmpeg_exe = ffmpeg_exe() if self.kind == "mp4" else None
        if self.kind == "mp4" and self._ffmpeg_exe is None:
            raise RecordError(f"{self.path}: MP4 needs ffmpeg (on PATH, or `pip install "
                              "imageio-ffmpeg`); record to .gif or a PNG folder instead")
        if self.kind == "png":
            if self.path.exists() and not self.path.is_dir():
                raise RecordError(f"{self.path} exists and is not a folder (PNG frames go in a "
                                  "folder; use .gif or .mp4 for one file)")
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.parent.is_dir():
            raise RecordError(f"{self.path}: folder {self.path.parent} does not exist")

    def add(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame[:, :, :3], dtype=np.uint8)
        if self.kind == "png":
            (self.path / f"frame_{self.frames:05d}.png").write_bytes(encode_png(frame))
        elif self.kind == "gif":
            self._gif.append(frame)
        else:
            if self._ffmpeg is None:
                h, w = frame.shape[:2]
                self._ffmpeg = subprocess.Popen(
                    [str(self._ffmpeg_exe), "-loglevel", "error", "-y", "-f", "rawvideo",
                     "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{self.fps:g}", "-i", "-",
                     # H.264 in yuv420p needs even sides: pad an odd size by one pixel
                     "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p",
                     str(self.path)], stdin=subprocess.PIPE)
            assert self._ffmpeg.stdin is not None
            self._ffmpeg.stdin.write(frame.tobytes())
        self.frames += 1

    def close(self) -> str:
        """Write what was collected; returns a one-line description."""
        if self.kind == "gif" and self._gif:
            from PIL import Image

            images = [Image.fromarray(f) for f in self._gif]
            images[0].save(self.path, save_all=True, append_images=images[1:],
                           duration=round(1000 / self.fps), loop=0)
        elif self._ffmpeg is not None:
            assert self._ffmpeg.stdin is not None
            self._ffmpeg.stdin.close()
            if self._ffmpeg.wait() != 0:
                raise RecordError(f"ffmpeg failed writing {self.path}")
        return f"recorded {self.frames} frames at {self.fps:g} fps to {self.path}"
