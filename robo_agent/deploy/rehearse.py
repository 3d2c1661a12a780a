"""`robo-agent rehearse`: the gate between research and a real arm.

Starts `sim_robot` (the artifact's robot and task scene) and, per episode, a
`policy_runner` process; they talk over real DDS in a private ROS_DOMAIN_ID (localhost
discovery). Goals come from seeds disjoint from the research evaluation seeds; the same
goals are also run directly in the Gymnasium env, and the two are compared pair by pair.
Optional added actuation latencies re-run the ROS episodes. A passing rehearsal (parity
>= 0.9 and no significant paired difference, exact McNemar p >= 0.05) writes
`rehearsal.json` beside the artifact, bound to the model's sha256.

Each ROS episode records how fast the simulation ran against the wall clock
(`sim_speed`, from sim_robot's `/clock`), how old the last `/joint_states` was when the
final error was measured, and the runner's own last distance to the goal; an episode
whose sim fell behind (a busy machine) is run again, up to `EPISODE_TRIES` times, and a
rehearsal that still has one does not pass: it measured the machine, not the policy.

This is the one deploy command that may import the simulator (it runs it).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from robo_agent.core.artifact import Rehearsal, load_spec, write_rehearsal
from robo_agent.deploy import rehearse_record as rec
from robo_agent.deploy.stats import paired_summary

SEED_BASE = 7_000_000  # rehearsal goal seeds start here, skipping any research seed
PARITY_MIN = 0.9
#: an episode during which sim_robot's simulated time (/clock) ran slower than this
#: fraction of the wall clock is run again (the runner's episode is wall-clock: a sim
#: that falls behind gives the policy less simulated time than the env gave it)
MIN_SIM_SPEED = 0.9
EPISODE_TRIES = 3


def rehearsal_seeds(evaluation_seeds: list[int], n: int) -> list[int]:
    taken = set(evaluation_seeds)
    out, s = [], SEED_BASE
    while len(out) < n:
        if s not in taken:
            out.append(s)
        s += 1
    return out


def run_direct(artifact: Path, seeds: list[int]) -> list[dict[str, Any]]:
    """The artifact in the Gymnasium env on each seed's goal (as the frozen evaluator)."""
    import gymnasium as gym

    import robo_agent.sim  # noqa: F401  (registers the envs)
    from robo_agent.core.observation import trained_action_scale
    from robo_agent.core.robot_spec import load_robot
    from robo_agent.policy import OnnxPolicy

    policy = OnnxPolicy(artifact)
    # the env the policy was trained in (its action speed), whatever today's default
    scale = trained_action_scale(policy.spec, load_robot(policy.spec.robot))
    env = gym.make(policy.spec.task, action_scale=scale)
    out = []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            goal = obs["desired_goal"].astype(float)
            done = False
            while not done:
                obs, _, term, trunc, info = env.step(policy.act(obs))
                done = term or trunc
            dist = float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))
            out.append({"seed": seed, "goal": goal.tolist(), "success": bool(info["is_success"]),
                        "final_error_m": dist})
        steps = env.spec.max_episode_steps if env.spec else 50
    finally:
        env.close()
    for o in out:
        o["steps"] = steps
    return out


def _env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    return env


class _Watcher:
    """A private rclpy context: reads /joint_states and the runner's status, homes the arm."""

    def __init__(self, domain: int, joint_names: list[str], trajectory_topic: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        from robo_agent.ros import interfaces as ifc
        from robo_agent.ros.background import BackgroundNode

        self.ifc = ifc
        self.names = joint_names
        self.ros = BackgroundNode("rehearse_watcher", domain)
        node = self.ros.node
        self.q: np.ndarray | None = None
        self.state_time = 0.0  # time.monotonic() of the last complete /joint_states
        self.sim_time: float | None = None  # s, sim_robot's /clock
        self.status: dict[str, str] = {}
        node.create_subscription(JointState, ifc.JOINT_STATES_TOPIC, self._on_state, ifc.STATES)
        node.create_subscription(Clock, ifc.CLOCK_TOPIC, self._on_clock, ifc.STATES)
        node.create_subscription(DiagnosticArray, "/robo_agent/policy/status", self._on_status,
                                 ifc.STATUS)
        self.pub = node.create_publisher(JointTrajectory, trajectory_topic, ifc.COMMANDS)
        self.ros.start()

    def _on_state(self, msg: Any) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in self.names):
            self.q = np.array([msg.position[index[n]] for n in self.names])
            self.state_time = time.monotonic()

    def _on_clock(self, msg: Any) -> None:
        self.sim_time = msg.clock.sec + msg.clock.nanosec * 1e-9

    def _on_status(self, msg: Any) -> None:
        for st in msg.status:
            self.status = {kv.key: kv.value for kv in st.values}

    def home(self, q_home: np.ndarray, timeout: float = 8.0) -> bool:
        """Drive the arm home (a 1.5 s trajectory) and wait until it is there."""
        t0 = time.monotonic()
        while self.pub.get_subscription_count() == 0 and time.monotonic() - t0 < timeout:
            time.sleep(0.05)
        self.pub.publish(self.ifc.trajectory_msg(self.names, [(1.5, q_home, None)]))
        while time.monotonic() - t0 < timeout:
            if self.q is not None and np.max(np.abs(self.q - q_home)) < 0.005 \
                    and time.monotonic() - t0 > 1.8:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.ros.close()


def rehearse(artifact: str | Path, episodes: int = 10, latencies_ms: list[float] | None = None,
             command_interface: str = "trajectory", write: bool = True,
             log=print, record: str | Path | None = None, record_fps: float = rec.DEFAULT_FPS,
             record_size: str = rec.DEFAULT_SIZE) -> dict[str, Any]:
    """Run the rehearsal; returns the JSON-able result (and writes rehearsal.json on a pass).

    `record`: also record sim_robot's camera during the ROS episodes (rehearse_record)."""
    from robo_agent.core.robot_spec import load_robot
    from robo_agent.kinematics import Kinematics

    artifact = Path(artifact).resolve()
    spec = load_spec(artifact, verify=True)
    recording = rec.open_recorder(record, record_fps, record_size)  # a bad target fails here
    robot = load_robot(spec.robot)
    seeds = rehearsal_seeds(spec.provenance.evaluation_seeds, episodes)
    log(f"direct: {episodes} episodes of {spec.task} in the Gymnasium env")
    direct = run_direct(artifact, seeds)
    steps = direct[0]["steps"]
    threshold = float((spec.deployment or {}).get("distance_threshold", 0.05))
    task = (spec.deployment or {}).get("task", "reach")
    domain = random.randint(150, 230)
    tmp = Path(tempfile.mkdtemp(prefix="rehearse_"))
    sim = subprocess.Popen([sys.executable, "-m", "robo_agent.ros.sim_robot", "--ros-args",
                            "-p", f"robot:={robot.name}", "-p", f"task:={task}",
                            *rec.camera_args(recording)],
                           env=_env(domain), stdout=(tmp / "sim_robot.log").open("wb"),
                           stderr=subprocess.STDOUT)
    watcher = _Watcher(domain, robot.joint_names, robot.controllers.trajectory_topic)
    camera = rec.CameraFeed(domain, robot.camera_topic, recording) if recording else None
    kin = Kinematics.for_robot(robot)
    curves: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        while watcher.q is None:
            if sim.poll() is not None or time.monotonic() - t0 > 60:
                raise RuntimeError(f"sim_robot did not start: "
                                   f"{(tmp / 'sim_robot.log').read_text()[-2000:]}")
            time.sleep(0.1)
        for latency in [0.0, *[float(x) for x in (latencies_ms or []) if float(x) != 0.0]]:
            ros = []
            for k, d in enumerate(direct):
                for attempt in range(1, EPISODE_TRIES + 1):
                    watcher.home(robot.home_array)
                    watcher.status = {}
                    if camera:
                        camera.active.set()  # record the episodes, not the homing
                    sim0, wall0 = watcher.sim_time, time.monotonic()
                    r = _ros_episode(artifact, d["goal"], steps * spec.control_dt, latency,
                                     command_interface, domain,
                                     tmp / f"runner_{latency:g}_{k}_{attempt}.log")
                    if camera:
                        camera.active.clear()
                    r.update(seed=d["seed"], attempt=attempt,
                             **_episode_end(watcher, kin, d["goal"], threshold, sim0, wall0))
                    log(f"  latency {latency:g} ms, episode {k + 1}/{episodes}: ROS "
                        f"{'ok' if r['success'] else 'miss'} "
                        f"({r['final_error_m'] * 1000:.1f} mm; runner's last "
                        f"{_mm(r['runner_distance_m'])} mm; sim speed {r['sim_speed']:.2f}; "
                        f"state {r['state_age_s'] * 1000:.0f} ms old), direct "
                        f"{'ok' if d['success'] else 'miss'} ({d['final_error_m'] * 1000:.1f} mm)")
                    if not r["sim_speed"] < MIN_SIM_SPEED:  # (NaN: no /clock, not known)
                        break
                    log(f"  the sim ran at {r['sim_speed']:.2f} of real time in this "
                        f"episode (machine busy): "
                        + ("running it again" if attempt < EPISODE_TRIES else "giving up"))
                ros.append(r)
            curves[f"{latency:g}"] = ros
    finally:
        recorded = camera.close() if camera else None
        watcher.close()
        sim.send_signal(2)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
    base = curves["0"]
    summary = paired_summary([r["success"] for r in base], [d["success"] for d in direct])
    rates = [r["loop_rate_hz"] for r in base if np.isfinite(r["loop_rate_hz"])]
    speeds = [r["sim_speed"] for v in curves.values() for r in v]
    sim_behind = sum(x < MIN_SIM_SPEED for x in speeds)
    passed = bool(summary["parity"] >= PARITY_MIN and summary["mcnemar_p"] >= 0.05
                  and summary["direct_success"] > 0 and not sim_behind)
    result: dict[str, Any] = {
        **summary, "passed": passed, "artifact": str(artifact),
        "artifact_sha256": spec.model_sha256, "task": spec.task, "robot": robot.name,
        "final_error_m": float(np.median([r["final_error_m"] for r in base])),
        "direct_final_error_m": float(np.median([d["final_error_m"] for d in direct])),
        "loop_rate_hz": float(np.median(rates)) if rates else None,
        "target_rate_hz": spec.control_rate_hz, "seeds": seeds,
        "command_interface": command_interface,
        "sim_speed_min": float(np.nanmin(speeds)) if np.isfinite(speeds).any() else None,
        "episodes_sim_behind": sim_behind,
        "episodes_repeated": sum(r["attempt"] - 1 for v in curves.values() for r in v),
        "latency_curve": {k: sum(r["success"] for r in v) / len(v) for k, v in curves.items()},
        "logs": str(tmp),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if write and passed:
        write_rehearsal(artifact, Rehearsal.model_validate(
            {k: v for k, v in result.items() if k != "logs"}))
        result["rehearsal_file"] = str(artifact / "rehearsal.json")
    if recorded:
        log(recorded)
        result["recording"] = recorded
    return result


def _mm(metres: float | None) -> str:
    return "?" if metres is None else f"{metres * 1000:.1f}"


def _episode_end(watcher: _Watcher, kin: Any, goal: list[float], threshold: float,
                 sim0: float | None, wall0: float) -> dict[str, Any]:
    """What the episode left: the arm's final error (from the last /joint_states), how
    old that state was, the runner's own last distance (its status) and the sim's speed
    over the episode (simulated s per wall s, NaN without /clock)."""
    q = watcher.q
    err = float(np.linalg.norm(kin.ee_pose(q)[0] - np.asarray(goal)))
    sim1, wall1 = watcher.sim_time, time.monotonic()
    speed = (sim1 - sim0) / (wall1 - wall0) if sim0 is not None and sim1 is not None \
        else float("nan")
    distance = watcher.status.get("distance_m", "None")
    return {"final_error_m": err, "success": err < threshold, "sim_speed": speed,
            "state_age_s": wall1 - watcher.state_time,
            "runner_distance_m": None if distance == "None" else float(distance),
            "loop_rate_hz": float(watcher.status.get("loop_rate_hz", "nan")),
            "missed_deadlines": float(watcher.status.get("missed_deadlines", "nan"))}


def _ros_episode(artifact: Path, goal: list[float], duration: float, latency: float,
                 interface: str, domain: int, log: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    params = {"artifact": str(artifact), "goal": "[" + ", ".join(f"{g:.6f}" for g in goal) + "]",
              "max_duration": f"{duration:g}", "actuation_latency_ms": f"{latency:g}",
              "command_interface": interface, "rehearsal_required": "false",
              # run the whole episode, as the env does (no early stop at the goal)
              "success_steps": "1000000",
              "audit_log": str(log.with_suffix(".audit.jsonl"))}
    cmd = [sys.executable, "-m", "robo_agent.ros.policy_runner", "--ros-args"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    with log.open("wb") as out:
        proc = subprocess.run(cmd, env=_env(domain), stdout=out, stderr=subprocess.STDOUT,
                              timeout=duration + 60)
    time.sleep(0.3)  # the final hold settles and the last /joint_states arrives
    return {"exit_code": proc.returncode, "wall_s": time.monotonic() - t0}
