"""The camera sees: real pixels from PyBullet, through sim_robot's Image topic, to the tool.

Assertions look at image content (distinct colours, the arm visible), not only at PNG
headers: a blank frame from a renderer that loaded but drew nothing must fail here.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from robo_agent.core.robot_spec import load_robot

PANDA = load_robot("panda")


def distinct_colours(rgb: np.ndarray) -> int:
    return len(np.unique(rgb.reshape(-1, 3), axis=0))


def _scene() -> Any:
    from robo_agent.sim.facade import PyBullet
    from robo_agent.sim.robot import SimRobot
    from robo_agent.sim.tasks import task_class

    sim = PyBullet("direct")
    robot = SimRobot(sim, PANDA)
    task = task_class("pick_and_place")(sim, robot)
    task.build()
    robot.reset()
    task.reset(np.random.default_rng(0))
    return sim, robot


@pytest.mark.sim
def test_default_camera_shows_the_arm_and_the_table() -> None:
    pytest.importorskip("pybullet")
    sim, robot = _scene()
    try:
        home = sim.render_rgb(160, 120)
        assert home.shape == (120, 160, 3) and home.dtype == np.uint8
        # A blank EGL frame is one colour; a real scene has shading, the arm, the table.
        assert distinct_colours(home) >= 50, (sim.renderer, distinct_colours(home))
        # The arm is in view: folding it changes a good part of the picture.
        sim.reset_joints(robot.body, robot.joints, np.array([1.2, 0.6, 0.0, -1.0, 0.0, 1.6, 0.0]))
        moved = sim.render_rgb(160, 120)
        changed = np.abs(moved.astype(int) - home.astype(int)).max(axis=2) > 30
        assert changed.mean() > 0.02, changed.mean()
    finally:
        sim.close()


@pytest.mark.sim
def test_egl_loaded_after_the_bodies_is_not_used() -> None:
    """The cause of the blank camera: EGL loaded lazily after the scene was built knows
    no visual shapes. Then TinyRenderer is used, and the picture has content."""
    pytest.importorskip("pybullet")
    sim, _ = _scene()
    try:
        assert sim.use_egl() is False and sim.renderer == "tiny"
        assert distinct_colours(sim.render_rgb(64, 48)) >= 20
    finally:
        sim.close()


@pytest.mark.parametrize(
    ("encoding", "channels", "dtype"),
    [("rgb8", 3, np.uint8), ("bgr8", 3, np.uint8), ("rgba8", 4, np.uint8),
     ("mono8", 1, np.uint8), ("16UC1", 1, np.dtype("<u2"))],
)
def test_image_encodings_convert_to_rgb(encoding: str, channels: int, dtype: Any) -> None:
    pytest.importorskip("rclpy")
    from robo_agent.ros.tool_sensors import image_to_rgb, resize_nearest

    rng = np.random.default_rng(1)
    top = np.iinfo(dtype).max if dtype != np.uint8 else 255
    px = rng.integers(1, top, size=(6, 8, channels)).astype(dtype)
    padded = np.zeros((6, 8 * channels * px.itemsize + 4), dtype=np.uint8)  # row padding
    padded[:, : 8 * channels * px.itemsize] = px.reshape(6, -1).view(np.uint8)
    rgb = image_to_rgb(encoding, 8, 6, padded.shape[1], padded.tobytes())
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    if encoding == "rgb8":
        assert np.array_equal(rgb, px)
    elif encoding == "bgr8":
        assert np.array_equal(rgb, px[:, :, ::-1])
    elif encoding == "rgba8":
        assert np.array_equal(rgb, px[:, :, :3])
    elif encoding == "mono8":
        assert np.array_equal(rgb[:, :, 1], px[:, :, 0])
    else:  # depth as grey: nearest is darkest, farthest is white
        d = px[:, :, 0]
        assert rgb[np.unravel_index(d.argmax(), d.shape)][0] == 255
        assert rgb[np.unravel_index(d.argmin(), d.shape)][0] == 0
    big = resize_nearest(rgb, 16, 12)
    assert big.shape == (12, 16, 3) and np.array_equal(big[::2, ::2], rgb)
    with pytest.raises(ValueError, match="unsupported image encoding"):
        image_to_rgb("yuv422", 8, 6, 16, bytes(96))
    with pytest.raises(ValueError, match="does not hold"):
        image_to_rgb("rgb8", 8, 6, 24, bytes(10))


# --- through ROS: sim_robot publishes on the description's camera topic -----------------

@pytest.fixture(scope="module")
def executor(sim_robot: Any, ros_env: dict[str, str], tmp_path_factory: Any) -> Iterator[Any]:
    from robo_agent.ros.tool_executor import RosToolExecutor

    folder = tmp_path_factory.mktemp("camera")
    ex = RosToolExecutor("panda", audit_log=folder / "audit.jsonl", node_name="agent_test_cam",
                         parameters={"image_dir": str(folder)},
                         domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    from robo_agent.agent.session import wait_for_robot

    assert wait_for_robot(ex).ok
    yield ex
    ex.close()


@pytest.mark.ros
def test_get_camera_image_from_sim_robot_has_content(executor: Any) -> None:
    from PIL import Image

    result = executor.call("get_camera_image", {"width": 160, "height": 120})
    assert result.ok, result.message
    assert result.data["encoding"] == "rgb8" and result.data["source_size"] == [160, 120]
    rgb = np.asarray(Image.open(io.BytesIO(result.image_png)).convert("RGB"))
    assert rgb.shape == (120, 160, 3)
    assert distinct_colours(rgb) >= 50
    with open(result.image_path, "rb") as f:
        assert f.read() == result.image_png


@pytest.mark.ros
def test_a_depth_camera_is_converted_and_resized(
    sim_robot: Any, ros_env: dict[str, str], tmp_path: Any
) -> None:
    """A 'real' camera: a 16UC1 depth stream on a custom topic, no request answered."""
    import threading

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image as ImageMsg

    from robo_agent.ros.tool_executor import RosToolExecutor

    domain = int(ros_env["ROS_DOMAIN_ID"])
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("agent_test_depth_camera", context=ctx)
    pub = node.create_publisher(ImageMsg, "/test_depth/image_raw", qos_profile_sensor_data)
    depth = np.tile(np.arange(1, 41, dtype="<u2") * 100, (30, 1))  # a ramp, left near
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            msg = ImageMsg(height=30, width=40, encoding="16UC1", step=80)
            msg.header.frame_id = "depth_camera"
            msg.data = depth.tobytes()
            pub.publish(msg)
            time.sleep(0.05)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    ex = RosToolExecutor("panda", audit_log=tmp_path / "audit.jsonl", node_name="agent_test_dc",
                         parameters={"camera_topic": "/test_depth/image_raw",
                                     "image_dir": str(tmp_path)}, domain_id=domain)
    try:
        result = ex.call("get_camera_image", {"width": 80, "height": 60})
        assert result.ok, result.message
        assert result.data["source_size"] == [40, 30] and result.data["frame"] == "depth_camera"
        from PIL import Image

        rgb = np.asarray(Image.open(io.BytesIO(result.image_png)).convert("RGB"))
        assert rgb.shape == (60, 80, 3)
        row = rgb[30, :, 0].astype(int)
        assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)  # grey ramp
    finally:
        stop.set()
        streamer.join()
        ex.close()
        node.destroy_node()
        ctx.try_shutdown()
