"""Pure helpers in robo_agent.core: trajectory interpolation, PNG encoding, quaternions."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from robo_agent.core.geometry import quat_angle, quat_from_rpy, quat_mul
from robo_agent.core.png import encode_png
from robo_agent.core.trajectory import TrajectoryError, build_trajectory

JOINTS = ["a", "b", "c"]
START = np.array([0.0, 1.0, 2.0])


def test_linear_interpolation_by_name_with_partial_goal() -> None:
    traj = build_trajectory(JOINTS, ["c", "a"], [1.0, 2.0], [[3.0, 1.0], [4.0, 2.0]], [[], []],
                            START, np.zeros(3))
    assert np.allclose(traj.sample(0.0), START)
    assert np.allclose(traj.sample(0.5), [0.5, 1.0, 2.5])
    assert np.allclose(traj.sample(1.5), [1.5, 1.0, 3.5])
    assert np.allclose(traj.sample(10.0), [2.0, 1.0, 4.0])  # holds the last point
    assert traj.duration == 2.0


def test_cubic_segments_match_velocities() -> None:
    traj = build_trajectory(["a"], ["a"], [1.0], [[1.0]], [[0.0]], np.array([0.0]),
                            np.array([0.0]))
    assert traj.velocities is not None
    assert traj.sample(0.5)[0] == pytest.approx(0.5)
    assert traj.sample(0.1)[0] < 0.1  # eases in (zero start velocity)


@pytest.mark.parametrize(
    ("names", "times", "positions", "needle"),
    [
        (["x"], [1.0], [[0.0]], "unknown joints"),
        (["a", "a"], [1.0], [[0.0, 0.0]], "duplicate"),
        (["a"], [1.0, 1.0], [[0.0], [1.0]], "strictly increasing"),
        (["a"], [-1.0], [[0.0]], "strictly increasing"),
        (["a"], [1.0], [[0.0, 1.0]], "1 joints"),
        (["a"], [1.0], [[float("nan")]], "non-finite"),
        (["a"], [], [], "no points"),
    ],
)
def test_invalid_trajectories(names, times, positions, needle) -> None:
    with pytest.raises(TrajectoryError, match=needle):
        build_trajectory(JOINTS, names, times, positions, [[] for _ in times], START,
                         np.zeros(3))


def test_png_round_trip() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, size=(5, 7, 3), dtype=np.uint8)
    png = encode_png(rgb)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (7, 5)
    idat = png.index(b"IDAT")
    length = struct.unpack(">I", png[idat - 4: idat])[0]
    raw = zlib.decompress(png[idat + 4: idat + 4 + length])
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(5, 1 + 7 * 3)
    assert np.all(rows[:, 0] == 0) and np.array_equal(rows[:, 1:].reshape(5, 7, 3), rgb)
    with pytest.raises(ValueError, match="RGB"):
        encode_png(np.zeros((4, 4)))


def test_quaternions() -> None:
    qz = quat_from_rpy(0.0, 0.0, np.pi / 2)
    assert np.allclose(qz, [0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    identity = np.array([0.0, 0.0, 0.0, 1.0])
    assert np.allclose(quat_mul(qz, identity), qz)
    assert quat_angle(quat_mul(qz, qz), quat_from_rpy(0, 0, np.pi)) == pytest.approx(0, abs=1e-6)
    assert quat_angle(identity, qz) == pytest.approx(np.pi / 2)
