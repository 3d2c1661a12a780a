"""The policy runner's commands out: encoding, the rehearsal's added latency, publishing.

A position command is kept serialized: each tick writes only the new positions' bytes.

`Publisher.publish` of a message object converts it to its C form and serializes it on
every call; for a `JointTrajectory` (joint names, one point) that is a good part of the
runner's publish cost right after the control thread wakes up (an in-process check
during development, not a benchmark: p50 0.11-0.21 ms for the message after a 4 ms
sleep, 0.09 ms for the same command as bytes).
The command's layout never changes between ticks — same joint names, same
`time_from_start`, an unstamped header — so the message is serialized once with
sentinel positions, the sentinel's offset found in the CDR bytes, and every command is
the template with the positions written over it, published as a serialized message.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
from rclpy.publisher import Publisher
from rclpy.serialization import serialize_message
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from robo_agent.ros import interfaces as ifc

#: positions no real command has (denormal-sized, distinct): their bytes mark the spot
_SENTINEL_BASE = 1.2345678e-300


class SerializedCommand:
    """The serialized bytes of `template`, with its positions array replaceable."""

    def __init__(self, template: Any, set_positions: Any, size: int) -> None:
        """`set_positions(msg, values)` stores `size` float64 values in the template's
        positions field (e.g. a trajectory point's `positions`)."""
        sentinel = np.array([_SENTINEL_BASE * (k + 2) for k in range(size)], np.float64)
        set_positions(template, sentinel)
        raw = serialize_message(template)
        marker = sentinel.tobytes()
        offset = raw.find(marker)
        if offset < 0 or raw.find(marker, offset + 1) >= 0:
            raise ValueError("the positions are not one contiguous float64 array in the CDR")
        self._buffer = bytearray(raw)
        self._offset, self._size = offset, size

    def encode(self, positions: np.ndarray) -> bytes:
        """The serialized command for these positions (in the byte order the template was
        serialized in: this machine's, as rmw writes it)."""
        values = np.asarray(positions, dtype=np.float64).reshape(-1)
        if values.size != self._size:
            raise ValueError(f"expected {self._size} positions, got {values.size}")
        self._buffer[self._offset : self._offset + 8 * self._size] = values.tobytes()
        return bytes(self._buffer)


class CommandOut:
    """Publishes the runner's commands on `publisher`: one-point `JointTrajectory`s
    (`mode` "trajectory") or `Float64MultiArray`s ("position"), serialized once and
    patched per tick, each `latency_s` late when the rehearsal adds actuation latency."""

    def __init__(self, publisher: Publisher, mode: str, joint_names: list[str],
                 period: float, latency_s: float = 0.0) -> None:
        self.publisher, self.mode = publisher, mode
        self.joint_names, self.period, self.latency = list(joint_names), period, latency_s
        self._delayed: deque[tuple[float, Any]] = deque()
        self._command: SerializedCommand | None = None

    def message(self, q: np.ndarray | None) -> Any:
        """The command for positions q (robot order), as serialized bytes, or, without q,
        what stops the controller (an empty trajectory; nothing for a position
        controller, which holds its last command)."""
        if q is None:
            if self.mode == "position":
                return None
            msg = JointTrajectory()
            msg.joint_names = list(self.joint_names)
            return msg
        if self._command is None:
            if self.mode == "position":
                self._command = SerializedCommand(
                    Float64MultiArray(), lambda m, v: setattr(m, "data", v.tolist()), len(q))
            else:
                self._command = SerializedCommand(
                    ifc.trajectory_msg(self.joint_names, [(self.period, q, None)]),
                    lambda m, v: setattr(m.points[0], "positions", v.tolist()), len(q))
        return self._command.encode(q)

    def send(self, q: np.ndarray | None) -> None:
        """Publish the command for q now, or queue it when latency is added."""
        msg = self.message(q)
        if msg is None:
            return
        if self.latency > 0:
            self._delayed.append((time.monotonic() + self.latency, msg))
        else:
            self.publisher.publish(msg)

    def send_now(self, q: np.ndarray | None) -> None:
        """Publish the command for q at once, past any queue (the hold on exit)."""
        msg = self.message(q)
        if msg is not None:
            self.publisher.publish(msg)

    def flush(self) -> None:
        """Publish the queued commands whose added latency has passed."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            self.publisher.publish(self._delayed.popleft()[1])

    @property
    def pending(self) -> bool:
        return bool(self._delayed)

    def listened(self) -> bool:
        """Whether a controller subscribes (a middleware call: not in a latency window)."""
        return self.publisher.get_subscription_count() > 0
