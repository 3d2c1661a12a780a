"""The one `main()` shape every robo_agent executable shares.

`rclpy.init` with the process's `--ros-args`, build the node, spin until SIGINT or an
external shutdown, turn a configuration error (unknown robot, bad parameter, bad policy
file) into a one-line message and exit status 2, and always clean up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

N = TypeVar("N", bound=Node)


def run_node(
    name: str,
    make_node: Callable[[], N],
    close: Callable[[N], None],
    config_errors: tuple[type[BaseException], ...] = (ValueError,),
    args: list[str] | None = None,
) -> int:
    """Run one node to completion; returns the process exit status."""
    rclpy.init(args=args if args is not None else sys.argv)
    node: N | None = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        # spin_once with a timeout rather than spin(): if a SIGINT's wake-up of the wait
        # set is ever missed, the shut-down context still ends the loop within 0.2 s.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except config_errors as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            close(node)
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
