"""Sensor tools: the camera image and the object poses, read from the ROS graph.

The camera is any `sensor_msgs/Image` topic (the robot description's `camera_topic`):
rgb8, bgr8, rgba8, bgra8, mono8, and 16UC1/mono16 depth shown as grey, converted to RGB
and resized to the requested size, so `sim_robot` and a real camera driver are one path.
"""

from __future__ import annotations

import time

import numpy as np

from robo_agent.core.png import encode_png
from robo_agent.core.tools import ToolError, ToolResult
from robo_agent.ros.tool_node import ToolNode

CAMERA_TIMEOUT = 5.0  # s


def _r(v: object, n: int = 4) -> list:
    return np.round(np.asarray(v, dtype=float), n).tolist()


_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def image_to_rgb(encoding: str, width: int, height: int, step: int, data: bytes,
                 big_endian: bool = False) -> np.ndarray:
    """A sensor_msgs/Image payload as an (height, width, 3) uint8 RGB array.

    Depth (16UC1, mono16) is scaled to grey between its smallest and largest valid value.
    ValueError for an encoding it does not know or a payload of the wrong size.
    """
    if height < 1 or width < 1 or step < 1 or len(data) < step * height:
        raise ValueError(f"image payload of {len(data)} bytes does not hold {height} rows "
                         f"of {step} bytes")
    rows = np.frombuffer(data, dtype=np.uint8)[: step * height].reshape(height, step)
    if encoding in ("16UC1", "mono16"):
        dt = np.dtype(">u2" if big_endian else "<u2")
        depth = rows[:, : width * 2].copy().view(dt).reshape(height, width).astype(float)
        valid = depth > 0
        lo, hi = (depth[valid].min(), depth[valid].max()) if valid.any() else (0.0, 1.0)
        grey = np.where(valid, (depth - lo) / max(hi - lo, 1e-9) * 255.0, 0.0)
        return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
    if encoding not in _CHANNELS:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: "
                         f"{', '.join([*_CHANNELS, '16UC1', 'mono16'])}")
    n = _CHANNELS[encoding]
    px = rows[:, : width * n].reshape(height, width, n)
    if n == 1:
        return np.repeat(px, 3, axis=2)
    rgb = px[:, :, :3]
    return np.ascontiguousarray(rgb[:, :, ::-1] if encoding.startswith("bgr") else rgb)


def resize_nearest(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize (numpy only; exact when the size already matches)."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    rows = (np.arange(height) * h // height).clip(0, h - 1)
    cols = (np.arange(width) * w // width).clip(0, w - 1)
    return np.ascontiguousarray(rgb[rows][:, cols])


def camera_image(node: ToolNode, width: int, height: int) -> ToolResult:
    """The next camera image, as RGB of the requested size, saved as PNG and returned."""
    img = node.request_image(width, height, CAMERA_TIMEOUT)
    if img is None:
        raise ToolError("timeout", f"no image on {node.camera_topic} within "
                        f"{CAMERA_TIMEOUT} s (is the camera driver or sim_robot running?)")
    try:
        rgb = image_to_rgb(img.encoding, img.width, img.height, img.step, bytes(img.data),
                           bool(img.is_bigendian))
    except ValueError as err:
        raise ToolError("unavailable", f"camera image on {node.camera_topic}: {err}") from None
    source = (img.width, img.height)
    rgb = resize_nearest(rgb, width, height)
    png = encode_png(rgb)
    node.image_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.strftime('%Y%m%d_%H%M%S')}_{time.time_ns() % 10**9:09d}"
    path = node.image_dir / f"camera_{stamp}.png"
    path.write_bytes(png)
    mean = _r(rgb.reshape(-1, 3).mean(axis=0), 1)
    # The frame id is text from the graph: data for the model, never part of the message.
    return ToolResult(tool="get_camera_image", ok=True, image_png=png, image_path=str(path),
                      data={"width": width, "height": height, "frame": img.header.frame_id,
                            "source_size": list(source), "encoding": img.encoding,
                            "mean_rgb": mean},
                      message=f"{width}x{height} RGB camera image of the scene "
                              f"saved to {path}")


def object_poses(node: ToolNode) -> ToolResult:
    """Poses of every object published under the objects prefix."""
    node.refresh_object_subscriptions()
    t0 = time.monotonic()
    while (len(node.objects()) < node.object_topic_count
           and time.monotonic() - t0 < 1.0):
        time.sleep(0.02)
    objects = {}
    for name, (msg, stamp) in sorted(node.objects().items()):
        p, o = msg.pose.position, msg.pose.orientation
        objects[name] = {"frame": msg.header.frame_id, "position": _r([p.x, p.y, p.z]),
                         "orientation_xyzw": _r([o.x, o.y, o.z, o.w]),
                         "age_s": round(time.monotonic() - stamp, 3)}
    text = "; ".join(f"{n} at {v['position']} m" for n, v in objects.items())
    noun = "object" if len(objects) == 1 else "objects"
    return ToolResult(tool="get_object_poses", ok=True, data={"objects": objects},
                      message=f"{len(objects)} {noun}: {text}" if objects else
                      f"no object poses published under {node.p['objects_prefix']}")
