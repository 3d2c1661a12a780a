"""ROS bridge figures, measured in one run (issue 4):

1. `get_robot_state` latency p50/p99 through the in-process `RosToolExecutor` (what the
   MCP server uses), goal p99 <= 2 ms;
2. tool call -> first command message on the controller topic p50/p99 (`move_joints`,
   received by a listener node in another rclpy context), goal p99 <= 5 ms, next to
   the bare DDS publish -> receive latency measured the same way as a reference;
3. `sim_robot`'s achieved /joint_states rate versus the requested 250 Hz, goal >= 0.98;
4. RSS of the `arm_bridge` process after serving tool calls, goal <= 400 MB.

    python bench/ros.py [--calls 2000] [--moves 40] [--rate-window 10]

sim_robot and arm_bridge run as separate processes in a private ROS domain.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import psutil
import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from tqdm import tqdm
from trajectory_msgs.msg import JointTrajectory

from robo_agent.core.robot_spec import load_robot
from robo_agent.ros import interfaces as ifc
from robo_agent.ros.tool_executor import RosToolExecutor


class Listener:
    """A node in its own context that timestamps what arrives on the measured topics."""

    def __init__(self, domain: int) -> None:
        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = rclpy.create_node("bench_listener", context=self.ctx)
        self.traj_times: list[float] = []
        self.ping_times: list[float] = []
        self.state_times: list[float] = []
        self.results: dict[str, dict] = {}
        n = self.node
        n.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory",
                              lambda m: self.traj_times.append(time.perf_counter()), ifc.COMMANDS)
        n.create_subscription(Float64MultiArray, "/bench/ping",
                              lambda m: self.ping_times.append(time.perf_counter()), ifc.COMMANDS)
        n.create_subscription(String, ifc.TOOL_RESULT_TOPIC, self._on_result, ifc.COMMANDS)
        self.call_pub = n.create_publisher(String, ifc.TOOL_CALL_TOPIC, ifc.COMMANDS)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(n)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.ex.spin()
        except ExternalShutdownException:
            pass

    def _on_result(self, msg: String) -> None:
        d = json.loads(msg.data)
        self.results[str(d.get("id"))] = d

    def bridge_call(self, call_id: str, tool: str, args: dict, timeout: float = 20.0) -> dict:
        self.call_pub.publish(String(data=json.dumps({"id": call_id, "tool": tool,
                                                      "arguments": args})))
        t0 = time.monotonic()
        while call_id not in self.results:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"arm_bridge did not answer {tool}")
            time.sleep(0.005)
        return self.results.pop(call_id)

    def close(self) -> None:
        self.ex.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


def spawn(exe: str, domain: int, log: Path, **params: object) -> subprocess.Popen:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    cmd = [sys.executable, "-m", f"robo_agent.ros.{exe}", "--ros-args"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="get_robot_state calls")
    ap.add_argument("--moves", type=int, default=100, help="move_joints calls")
    ap.add_argument("--rate-window", type=float, default=10.0, help="s of /joint_states counted")
    args = ap.parse_args()
    domain = random.randint(1, 100)
    spec = load_robot("panda")
    with TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim = spawn("sim_robot", domain, tmp / "sim.log", robot="panda")
        bridge = spawn("arm_bridge", domain, tmp / "bridge.log", robot="panda",
                       safety_policy="unattended", audit_log=str(tmp / "bridge_audit.jsonl"))
        listener = Listener(domain)
        ex = None
        try:
            ex = RosToolExecutor(safety_policy="unattended", audit_log=tmp / "audit.jsonl",
                                 node_name="bench_tools", domain_id=domain)
            t0 = time.monotonic()
            while not ex.call("get_robot_state").ok:
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("no /joint_states from sim_robot: "
                                       + (tmp / "sim.log").read_text())
                time.sleep(0.1)
            time.sleep(1.0)  # discovery settles

            # 3. joint state rate over a window (first, while nothing else loads the CPU);
            # the subscription is removed afterwards so it does not load the latency runs.
            sub = listener.node.create_subscription(
                JointState, "/joint_states",
                lambda m: listener.state_times.append(time.perf_counter()), ifc.STATES)
            time.sleep(1.0)
            listener.state_times.clear()
            time.sleep(args.rate_window)
            ts = list(listener.state_times)
            listener.node.destroy_subscription(sub)
            rate = (len(ts) - 1) / (ts[-1] - ts[0])
            gaps = np.diff(ts) * 1e3

            # 1. get_robot_state latency
            lat = []
            for _ in tqdm(range(args.calls), desc="get_robot_state", leave=False):
                t = time.perf_counter()
                r = ex.call("get_robot_state")
                lat.append(time.perf_counter() - t)
                assert r.ok, r.message

            # 2a. reference: bare publish -> receive in another context, same process
            ping = ex.node.create_publisher(Float64MultiArray, "/bench/ping", ifc.COMMANDS)
            time.sleep(1.0)
            ref = []
            for _ in range(args.moves * 5):
                listener.ping_times.clear()
                t = time.perf_counter()
                ping.publish(Float64MultiArray(data=[0.0] * 7))
                while not listener.ping_times:
                    time.sleep(0.0001)
                ref.append(listener.ping_times[0] - t)
                time.sleep(0.005)

            # 2b. tool call -> first command on the controller topic
            cmd_lat = []
            home = spec.home_array
            for i in tqdm(range(args.moves), desc="move_joints", leave=False):
                target = home.copy()
                target[0] = 0.05 if i % 2 == 0 else -0.05
                listener.traj_times.clear()
                t = time.perf_counter()
                r = ex.call("move_joints", {"positions": target.tolist()})
                assert r.ok, r.message
                assert listener.traj_times, "no trajectory arrived"
                cmd_lat.append(listener.traj_times[0] - t)

            # 4. arm_bridge RSS after serving calls over the JSON topic pair
            for i in range(20):
                listener.bridge_call(f"b{i}", "get_robot_state", {})
            listener.bridge_call("bm", "move_joints", {"joints": {"panda_joint1": 0.0}})
            listener.bridge_call("bc", "get_camera_image", {})
            proc = psutil.Process(bridge.pid)
            rss = proc.memory_info().rss / 2**20
        finally:
            if ex is not None:
                ex.close()
            listener.close()
            stop(bridge)
            stop(sim)

    rows = [
        ("get_robot_state latency p50", f"{pct(lat, 50):.3f} ms", ""),
        ("get_robot_state latency p99", f"{pct(lat, 99):.3f} ms", "<= 2 ms",
         pct(lat, 99) <= 2.0),
        ("bare DDS publish->receive p50 (reference)", f"{pct(ref, 50):.3f} ms", ""),
        ("bare DDS publish->receive p99 (reference)", f"{pct(ref, 99):.3f} ms", ""),
        ("tool call -> first controller message p50", f"{pct(cmd_lat, 50):.3f} ms", ""),
        ("tool call -> first controller message p99", f"{pct(cmd_lat, 99):.3f} ms", "<= 5 ms",
         pct(cmd_lat, 99) <= 5.0),
        ("  ratio to bare DDS p50", f"{pct(cmd_lat, 50) / pct(ref, 50):.2f}x", ""),
        ("sim_robot /joint_states rate", f"{rate:.1f} Hz of 250 requested", ""),
        ("  achieved / requested", f"{rate / 250.0:.4f}", ">= 0.98", rate / 250.0 >= 0.98),
        ("  inter-message gap p99 / max", f"{np.percentile(gaps, 99):.2f} / {gaps.max():.2f} ms",
         ""),
        ("arm_bridge RSS", f"{rss:.0f} MB", "<= 400 MB", rss <= 400.0),
    ]
    print(f"\nrobo_agent ROS bridge benchmark ({args.calls} state calls, {args.moves} moves, "
          f"{args.rate_window:g} s rate window, {os.cpu_count()} CPUs)")
    for row in rows:
        goal = f"goal {row[2]}: {'PASS' if row[3] else 'FAIL'}" if row[2] else ""
        print(f"  {row[0]:<44} {row[1]:>28}   {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
