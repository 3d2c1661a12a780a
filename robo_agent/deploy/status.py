"""Live status of a running `policy_runner`, as `robo-agent deploy` prints it.

Subscribes to `/robo_agent/policy/status` (`diagnostic_msgs/DiagnosticArray`) in its own
rclpy context (the domain of `ROS_DOMAIN_ID`, as the runner) and prints one line when
the state changes, and at most once per `period` seconds while it stays:

    deploy: running | 0.082 m to goal | 25.0 Hz, 0 missed | 41 commands, 2 clipped | -

Imports rclpy and the message packages only: it runs on the robot.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

STATUS_TOPIC = "/robo_agent/policy/status"


def format_status(values: dict[str, str]) -> str:
    """One line from the runner's status key/values (missing keys shown as '?')."""
    def num(key: str, fmt: str) -> str:
        try:
            return format(float(values[key]), fmt)
        except (KeyError, ValueError):
            return "?"

    distance = values.get("distance_m", "None")
    to_goal = "no distance yet" if distance in ("None", "") else \
        f"{num('distance_m', '.3f')} m to goal"
    guard = values.get("last_guard") or "-"
    reason = values.get("last_guard_reason") or ""
    return (f"deploy: {values.get('state', '?')} | {to_goal} | "
            f"{num('loop_rate_hz', '.1f')} Hz, {num('missed_deadlines', '.0f')} missed | "
            f"{values.get('commands', '?')} commands, {values.get('clipped', '?')} clipped | "
            f"{guard}{': ' + reason if reason else ''}")


class StatusPrinter:
    """Prints the runner's status lines from a background thread until `close()`."""

    def __init__(self, out: TextIO = sys.stderr, period: float = 1.0,
                 topic: str = STATUS_TOPIC) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        from robo_agent.ros import interfaces as ifc
        from robo_agent.ros.background import BackgroundNode

        self.out, self.period = out, float(period)
        self.values: dict[str, str] = {}
        self.last_line = ""
        self._printed_state = ""
        self._printed_at = 0.0
        self._lock = threading.Lock()
        self.ros = BackgroundNode("deploy_status")
        self.ros.node.create_subscription(DiagnosticArray, topic, self._on_status,
                                          ifc.STATUS)
        self.ros.start()

    def _on_status(self, msg: Any) -> None:
        for st in msg.status:
            values = {kv.key: kv.value for kv in st.values}
            with self._lock:
                self.values = values
                now = time.monotonic()
                state = values.get("state", "")
                if state != self._printed_state or now - self._printed_at >= self.period:
                    self._printed_state, self._printed_at = state, now
                    self.last_line = format_status(values)
                    print(self.last_line, file=self.out, flush=True)

    def close(self) -> None:
        """Print the last status once more if it changed since, then shut down."""
        with self._lock:
            if self.values and format_status(self.values) != self.last_line:
                self.last_line = format_status(self.values)
                print(self.last_line, file=self.out, flush=True)
        self.ros.close()
