"""`BackgroundNode`: an rclpy node in a private context, spun by a daemon thread.

For commands that watch topics while they do something else in the foreground
(`robo-agent rehearse` homing the arm and recording its camera, `robo-agent deploy`
printing the runner's status). Create the node's subscriptions and publishers, then
`start()`; `close()` stops the spinning thread *before* the node goes away: destroying a
node under a running executor aborts the process in rclpy's C++ layer ("terminate called
without an active exception"), which is how this class came about.
"""

from __future__ import annotations

import threading

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


class BackgroundNode:
    """`node` lives in its own context (`domain`, or `ROS_DOMAIN_ID` when None)."""

    def __init__(self, name: str, domain: int | None = None) -> None:
        self.context = Context()
        if domain is None:
            rclpy.init(context=self.context)
        else:
            rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, name=name, daemon=True)
        self._closed = False

    def start(self) -> BackgroundNode:
        """Start spinning (after the subscriptions are made); returns self."""
        self.thread.start()
        return self

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context shutting down ends the spin
            pass

    def close(self) -> None:
        """Stop spinning, then destroy the node; idempotent."""
        if self._closed:
            return
        self._closed = True
        rclpy.try_shutdown(context=self.context)
        if self.thread.is_alive():
            self.thread.join(timeout=2.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
