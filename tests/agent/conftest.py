"""Fixtures for the agent tests.

- every test under tests/agent carries the `agent` marker;
- `scripted_llm`: a real OpenAI-compatible HTTP server on 127.0.0.1 that answers
  /v1/chat/completions from a script (canned tool calls, then a final message) and
  records every request, so the real `openai` client and our tool loop run unmodified.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.agent)


Step = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
"""A script step: {"tool_calls": [(name, args), ...]} or {"content": "..."}, or a function
of the request body returning one of those (to react to earlier tool results)."""


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool messages of a recorded request, parsed from JSON."""
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


class ScriptedLLM:
    """An OpenAI-compatible chat-completions endpoint that plays a script."""

    def __init__(self) -> None:
        self.script: list[Step] = []
        self.requests: list[dict[str, Any]] = []
        self._calls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = owner._answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}
        self.requests.append(body)
        if not self.script:
            return 500, {"error": {"message": "script exhausted", "type": "server_error"}}
        step = self.script.pop(0)
        if callable(step):
            try:
                step = step(body)
            except Exception as err:  # surfaces in the test as an HTTP 500 with the reason
                return 500, {"error": {"message": f"script step failed: {err!r}",
                                       "type": "server_error"}}
        self._calls += 1
        message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
        if step.get("tool_calls"):
            message["tool_calls"] = [
                {
                    "id": f"call_{self._calls}_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
                for i, (name, args) in enumerate(step["tool_calls"])
            ]
        return 200, {
            "id": f"chatcmpl-{self._calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if step.get("tool_calls") else "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLLM]:
    llm = ScriptedLLM()
    try:
        yield llm
    finally:
        llm.close()


# --- ROS: isolated domain, the simulated arm as a separate process, a /joint_states probe ---

@pytest.fixture(scope="session")
def ros_env() -> Iterator[dict[str, str]]:
    """A random DDS domain (1..100) for this test session, with localhost-only discovery.

    Concurrent test runs (other engineers, CI jobs) on this machine then never cross-talk.
    The environment returned is given to every child process, and the domain id is passed
    explicitly to every in-process rclpy context (other fixtures may touch os.environ).
    """
    pytest.importorskip("rclpy")
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    taken = os.environ.get("ROS_DOMAIN_ID", "")  # e.g. set by the ros tests' fixture
    candidates = [d for d in range(1, 101) if str(d) != taken]
    random.shuffle(candidates)
    # A domain somebody else's nodes use (another test run on this machine) would mix
    # their /joint_states into ours: motions "reached" while our arm never moved.
    domain = next((d for d in candidates[:8] if _domain_is_free(d)), candidates[0])
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)  # never reach a real LLM from tests
    env.pop("OPENAI_BASE_URL", None)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _domain_is_free(domain: int, listen_s: float = 1.0) -> bool:
    """No other ROS node is visible in `domain` (localhost discovery) after `listen_s`."""
    import rclpy

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    try:
        node = rclpy.create_node("agent_test_domain_probe", context=context)
        time.sleep(listen_s)
        others = [n for n in node.get_node_names() if n != "agent_test_domain_probe"]
        node.destroy_node()
        return not others
    finally:
        context.try_shutdown()


class JointStateProbe:
    """Subscribes /joint_states in its own rclpy context; reads what the arm really did."""

    def __init__(self, joint_names: list[str], domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState

        self.joint_names = joint_names
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("agent_test_probe", context=self.context)
        self._latest: dict[str, float] = {}
        self._stamp = 0.0
        self._lock = threading.Lock()
        self.node.create_subscription(JointState, "/joint_states", self._on_state, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # context shut down
            pass

    def _on_state(self, msg: Any) -> None:
        with self._lock:
            self._latest.update(zip(msg.name, msg.position, strict=False))
            self._stamp = time.monotonic()

    def positions(self, max_age: float = 0.5, wait: float = 10.0) -> np.ndarray:
        """The latest arm joint positions (robot order); waits for a fresh message."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                if self._stamp and time.monotonic() - self._stamp < max_age and all(
                    n in self._latest for n in self.joint_names
                ):
                    return np.array([self._latest[n] for n in self.joint_names])
            time.sleep(0.02)
        raise TimeoutError(f"no fresh /joint_states within {wait} s")

    def settled(self, index: int, target: float, tol: float, wait: float = 5.0) -> float:
        """Joint `index`'s position once within `tol` of `target` (or the last one after
        `wait` s): a motion's result comes back before this probe's copy of the state has
        caught up when the machine is busy, and `positions()` takes 0.5 s old as fresh."""
        deadline = time.monotonic() + wait
        q = float(self.positions(max_age=0.1)[index])
        while abs(q - target) > tol and time.monotonic() < deadline:
            time.sleep(0.02)
            q = float(self.positions(max_age=0.1)[index])
        return q

    def value(self, name: str) -> float:
        self.positions()
        with self._lock:
            return self._latest[name]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture(scope="module")
def sim_robot(
    ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JointStateProbe]:
    """The `sim_robot` node (PyBullet arm speaking ros2_control topics) as its own process.

    Yields a probe on its /joint_states. Module scope: it starts in well under a second,
    and is never left running while other test folders start their own robots.
    """
    pytest.importorskip("robo_agent.ros.sim_robot")
    from robo_agent.core.robot_spec import load_robot

    # A file, not a pipe: a long-lived child must never block on a full stderr pipe.
    log_path = tmp_path_factory.mktemp("sim_robot") / "stderr.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "robo_agent.ros.sim_robot", "--ros-args", "-p", "robot:=panda"],
            env=ros_env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    probe = JointStateProbe(load_robot("panda").joint_names, int(ros_env["ROS_DOMAIN_ID"]))
    try:
        try:
            probe.positions(wait=30.0)  # the first start on a loaded machine is slow
        except TimeoutError:
            pytest.fail(
                f"sim_robot published no /joint_states (exit {proc.poll()}): "
                f"{log_path.read_text()[-2000:]}"
            )
        deadline = time.monotonic() + 5.0  # a robot of an earlier module may still be leaving
        while (publishers := probe.node.count_publishers("/joint_states")) != 1 \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        if publishers != 1:
            pytest.fail(f"{publishers} /joint_states publishers in ROS domain "
                        f"{ros_env['ROS_DOMAIN_ID']}: another robot shares the domain")
        yield probe
    finally:
        probe.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
