"""`robo-agent rehearse --record OUT`: watch the rehearsal's ROS episodes on a headless machine.

`sim_robot` publishes its camera like a real driver (`sensor_msgs/Image` on the robot
description's `camera_topic`) at `camera_rate` when asked to (`camera_args`); `CameraFeed`
subscribes in its own rclpy context and hands the frames of each ROS episode (not the
homing between them) to the same `Recorder` as `robo-agent sim --record`: out.gif,
out.mp4 (ffmpeg on PATH) or a folder of numbered PNGs. The recorder is opened before
anything starts, so a bad target fails fast and changes nothing.

Rendering runs in sim_robot's physics loop (PyBullet is single-threaded), which catches
up on its absolute deadlines afterwards: keep `fps` and the frame size modest.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from robo_agent.sim.record import Recorder, RecordError, parse_frame_size

__all__ = ["DEFAULT_FPS", "DEFAULT_SIZE", "CameraFeed", "camera_args", "open_recorder"]

DEFAULT_FPS = 10.0
DEFAULT_SIZE = "320x240"


def open_recorder(target: str | Path | None, fps: float = DEFAULT_FPS,
                  size: str = DEFAULT_SIZE) -> tuple[Recorder, tuple[int, int]] | None:
    """The recorder and frame size for `--record`, or None; RecordError for a target, rate
    or size that cannot work (checked before the rehearsal starts)."""
    if target is None or str(target) == "":
        return None
    if not 1.0 <= fps <= 30.0:
        raise RecordError(f"--record-fps {fps:g} outside 1..30")
    frame = parse_frame_size(size)
    return Recorder(target, fps), frame


def camera_args(recording: tuple[Recorder, tuple[int, int]] | None) -> list[str]:
    """sim_robot parameters that make it stream its camera for the recording ([] if none)."""
    if recording is None:
        return []
    recorder, (w, h) = recording
    return ["-p", f"camera_rate:={recorder.fps:g}", "-p", f"camera_width:={w}",
            "-p", f"camera_height:={h}"]


class CameraFeed:
    """Frames from the camera topic into the recorder while `active` is set."""

    def __init__(self, domain: int, camera_topic: str,
                 recording: tuple[Recorder, tuple[int, int]]) -> None:
        from sensor_msgs.msg import Image

        from robo_agent.ros import interfaces as ifc
        from robo_agent.ros.background import BackgroundNode

        self.recorder, self.size = recording
        self.active = threading.Event()
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        self.ros = BackgroundNode("rehearse_camera", domain)
        self.ros.node.create_subscription(Image, camera_topic, self._on_image, ifc.SENSOR)
        self.ros.start()

    def _on_image(self, msg: Any) -> None:
        if not self.active.is_set():
            return
        from robo_agent.ros.tool_sensors import image_to_rgb, resize_nearest

        try:
            rgb = image_to_rgb(msg.encoding, msg.width, msg.height, msg.step, bytes(msg.data),
                               bool(msg.is_bigendian))
        except ValueError as err:
            if len(self.problems) < 5:
                self.problems.append(str(err))
            return
        with self._lock:
            if not self._closed:
                self.recorder.add(resize_nearest(rgb, *self.size))

    def close(self) -> str:
        """Stop listening and write the recording; returns a one-line description."""
        self.active.clear()
        self.ros.close()
        with self._lock:
            self._closed = True
        try:
            line = self.recorder.close()
        except RecordError as err:  # the rehearsal itself still counts; say what was lost
            line = f"recording failed: {err}"
        return line + (f" ({'; '.join(self.problems)})" if self.problems else "")
