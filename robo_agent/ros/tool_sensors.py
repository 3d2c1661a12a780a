"""Sensor tools: the camera image and the object poses, read from the ROS graph."""

from __future__ import annotations

import time

import numpy as np

from robo_agent.core.png import encode_png
from robo_agent.core.tools import ToolError, ToolResult
from robo_agent.ros.tool_node import ToolNode

CAMERA_TIMEOUT = 5.0  # s


def _r(v: object, n: int = 4) -> list:
    return np.round(np.asarray(v, dtype=float), n).tolist()


def camera_image(node: ToolNode, width: int, height: int) -> ToolResult:
    """Request one camera image, save it as PNG and return it (bytes and path)."""
    img = node.request_image(width, height, CAMERA_TIMEOUT)
    if img is None:
        raise ToolError("timeout", f"no {width}x{height} image on "
                        f"{node.p['camera_topic']} within {CAMERA_TIMEOUT} s")
    rgb = np.frombuffer(bytes(img.data), dtype=np.uint8)
    rgb = rgb.reshape(img.height, img.step)[:, : img.width * 3].reshape(
        img.height, img.width, 3)
    if img.encoding == "bgr8":
        rgb = rgb[:, :, ::-1]
    png = encode_png(rgb)
    node.image_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.strftime('%Y%m%d_%H%M%S')}_{time.time_ns() % 10**9:09d}"
    path = node.image_dir / f"camera_{stamp}.png"
    path.write_bytes(png)
    mean = _r(rgb.reshape(-1, 3).mean(axis=0), 1)
    return ToolResult(tool="get_camera_image", ok=True, image_png=png, image_path=str(path),
                      data={"width": img.width, "height": img.height, "frame":
                            img.header.frame_id, "mean_rgb": mean},
                      message=f"{img.width}x{img.height} RGB camera image of the scene "
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
