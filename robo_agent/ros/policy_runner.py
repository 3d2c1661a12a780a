"""`policy_runner`: runs an exported policy artifact on an arm over ros2_control topics.

Thin node: parameters, topics and timing. The decisions (observation assembly, action
semantics, guards) are `robo_agent.core.policy_loop.PolicyLoop`; every command passes the
safety envelope. One thread runs everything (`control_loop.run_control_loop`): the
executor's callbacks between control ticks, and each tick on a deadline-corrected
schedule (`core.deadline.DeadlineClock`) that counts missed deadlines and is phase-locked
to `/joint_states` when that stream's period divides the control period
(`core.deadline.PhaseLock`: each tick reads a state `phase_lead` s old, as measured from
the DDS receive time); with `realtime_priority` the thread runs under SCHED_FIFO. A tick
publishes one-point `JointTrajectory` messages (time_from_start = one period) or
`Float64MultiArray` position commands. Status goes to `/robo_agent/policy/status`
(`diagnostic_msgs/DiagnosticArray`). SIGINT sends one hold at the measured pose, then
the process exits 0.

Imports no torch, pybullet or gymnasium: onnxruntime, numpy, rclpy and the kinematics.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from robo_agent.core.artifact import ArtifactError, rehearsal_problem
from robo_agent.core.audit import AuditLog
from robo_agent.core.deadline import DeadlineClock, PhaseLock
from robo_agent.core.observation import compatibility_problems
from robo_agent.core.policy_loop import SOURCE, LoopConfig, PolicyLoop, Step, speed_ratio
from robo_agent.core.robot_spec import RobotSpecError, load_robot
from robo_agent.core.safety import SafetyEnvelope
from robo_agent.core.safety_policy import SafetyPolicyError, load_policy
from robo_agent.core.tools import ToolError
from robo_agent.ros import interfaces as ifc
from robo_agent.ros.command_out import CommandOut
from robo_agent.ros.control_loop import run_control_loop, set_realtime_priority
from robo_agent.ros.policy_goal import goal_from_param, goal_from_pose
from robo_agent.ros.runner_params import PARAMETERS
from robo_agent.ros.runner_timing import RunnerTiming

STATUS_PERIOD_S = 0.2  # status at 5 Hz, and at once on a change of state
LEVEL = {"idle": 0, "ramping": 0, "running": 0, "done": 0, "holding": 1, "refused": 2,
         "estopped": 2}


class RunnerRefused(ValueError):
    """The artifact, robot, goal or configuration cannot run; nothing was published."""


class PolicyRunnerNode(Node):
    """Loads one artifact and drives the arm with it until done, stopped or refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("policy_runner", **kwargs)
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(name, default,
                                   ParameterDescriptor(description=text, dynamic_typing=True))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self.p = p
        from robo_agent.policy import OnnxPolicy  # onnxruntime: only when a node is built

        if not str(p["artifact"]):
            raise RunnerRefused("parameter 'artifact' is empty: give the artifact folder")
        self.policy = OnnxPolicy(str(p["artifact"]))
        spec = self.policy.spec
        self.spec = load_robot(str(p["robot"]) or spec.robot)
        problems = compatibility_problems(spec, self.spec)
        if problems:
            raise RunnerRefused(f"{Path(str(p['artifact'])) / 'policy.json'}: "
                                + "; ".join(problems))
        if bool(p["rehearsal_required"]):
            why = rehearsal_problem(str(p["artifact"]), spec)
            if why:
                raise RunnerRefused(f"rehearsal required on this robot: {why}")
        rate = float(p["rate_hz"]) or spec.control_rate_hz
        if not (0 < rate <= 2000):
            raise RunnerRefused(f"rate_hz {rate} outside (0, 2000]")
        self.period = 1.0 / rate
        self.mode = str(p["command_interface"])
        if self.mode not in ("trajectory", "position"):
            raise RunnerRefused(f"command_interface '{self.mode}' is not 'trajectory' or "
                                "'position'")
        from robo_agent.kinematics import Kinematics  # pinocchio: no simulator on the robot

        self.kin = Kinematics.for_robot(self.spec)
        audit_path = str(p["audit_log"]) or Path.home() / ".ros" / "robo_agent" / "audit.jsonl"
        self.audit = AuditLog(audit_path)
        self.envelope = SafetyEnvelope(self.spec, load_policy(str(p["safety"]) or None),
                                       self.audit, kinematics=self.kin)
        self.dry_run = bool(p["dry_run"] or self.envelope.policy.dry_run)
        self.speed_ratio = speed_ratio(spec, self.spec, self.envelope.vmax, self.period)
        if self.speed_ratio > 1.01:
            self.get_logger().warning(
                f"{Path(str(p['artifact'])) / 'policy.json'} field action_scale: a full action "
                f"moves the joints {self.speed_ratio:.2f}x faster than the safety envelope's "
                "velocity cap lets a command through; commands will be clipped and the arm "
                "will not do what the policy did in training (retrain: the env's default "
                "action_scale matches the cap)")
        goal = goal_from_param(p["goal"])
        if goal is not None:
            self._check_goal(goal)
        cfg = LoopConfig(control_dt=self.period, max_duration=float(p["max_duration"]),
                         ramp_time=float(p["ramp_time"]), success_steps=int(p["success_steps"]))
        guard = self.envelope.check_stream_command
        self.loop = PolicyLoop(spec, self.spec, goal if goal is not None else np.zeros(3),
                               self.policy.act_one, self.kin.ee_pose, self.kin.ee_velocity,
                               guard, cfg)
        self.has_goal = goal is not None

        # -- state in (joints matched by name), e-stop, goals ----------------------------
        self._lock = threading.Lock()
        self._index = {n: i for i, n in enumerate(self.spec.joint_names)}
        self._q = np.full(self.spec.dof, np.nan)
        self._qd = np.zeros(self.spec.dof)
        self._seen = np.zeros(self.spec.dof, dtype=bool)
        self._stamp: float | None = None
        self.estopped = False
        self._estop_at: float | None = None
        self.create_subscription(JointState, str(p["joint_states_topic"]), self._on_state,
                                 ifc.STATES)
        self.create_subscription(Bool, str(p["estop_topic"]), self._on_estop, ifc.LATCHED)
        self.create_subscription(PoseStamped, str(p["goal_topic"]), self._on_goal, ifc.COMMANDS)

        # -- commands out ----------------------------------------------------------------
        ctl = self.spec.controllers
        topic = ctl.trajectory_topic if self.mode == "trajectory" else ctl.position_topic
        self.command_topic = ifc.preview_topic(topic) if self.dry_run else topic
        msg_type = JointTrajectory if self.mode == "trajectory" else Float64MultiArray
        self.pub_cmd = self.create_publisher(msg_type, self.command_topic, ifc.COMMANDS)
        self.pub_status = self.create_publisher(DiagnosticArray, str(p["status_topic"]),
                                                ifc.STATUS)
        self.out = CommandOut(self.pub_cmd, self.mode, self.spec.joint_names, self.period,
                              float(p["actuation_latency_ms"]) / 1000.0)
        self._listening = False  # whether a controller subscribes to the command topic

        # -- timing figures --------------------------------------------------------------
        self.clock = DeadlineClock(self.period)
        lead = min(max(float(p["phase_lead"]), 0.0), self.period / 2)
        self.phase = PhaseLock(self.period, lead)
        self.state_wait = min(max(float(p["state_wait"]), 0.0), self.period / 4)
        self.warm_lead = min(max(float(p["warm_lead"]), 0.0), self.period / 2)
        self.timing = RunnerTiming(self.clock, self.phase)
        self.interrupted = threading.Event()
        self.finished = threading.Event()
        self._running = True
        self._last_state = ""
        self._closed = False
        self._status_due = True
        self._last_status = 0.0
        self.get_logger().info(
            f"policy_runner: {spec.task} on {self.spec.name} at {rate:g} Hz, commands to "
            f"{self.command_topic}{' (dry run)' if self.dry_run else ''}; goal "
            f"{'from ' + str(p['goal_topic']) if goal is None else np.round(goal, 3).tolist()}")

    # -- inputs ----------------------------------------------------------------------------
    def _check_goal(self, goal: np.ndarray) -> None:
        try:
            self.envelope.check_ee_point(SOURCE, goal, "policy goal")
        except ToolError as err:
            raise RunnerRefused(err.message) from None

    def _on_state(self, msg: JointState, info: MessageInfo) -> None:
        # arrival = the DDS receive time (rmw fills it), not when this callback ran: the
        # executor may have been busy, and the latency figures should say so
        now = time.monotonic()
        rx = info.get("received_timestamp", 0)
        late = min(max((time.time_ns() - rx) * 1e-9, 0.0), 0.1) if rx else 0.0
        now -= late
        with self._lock:
            for k, name in enumerate(msg.name[: len(msg.position)]):
                i = self._index.get(name)
                if i is not None:
                    self._q[i] = msg.position[k]
                    self._qd[i] = msg.velocity[k] if k < len(msg.velocity) else 0.0
                    self._seen[i] = True
            if self._seen.all():  # a state missing a joint never counts as fresh
                self._stamp = now
                self.phase.arrival(time.perf_counter() - late)

    def _on_estop(self, msg: Bool) -> None:
        if bool(msg.data) and not self.estopped:
            self._estop_at = time.monotonic()
        self.estopped = bool(msg.data)

    def _on_goal(self, msg: PoseStamped) -> None:
        try:
            goal = goal_from_pose(msg, self.spec.base_frame)
            self._check_goal(goal)
        except (RunnerRefused, ValueError) as err:
            self.audit.record(SOURCE, "refused", f"goal refused: {err}", "goal")
            self.get_logger().error(f"goal refused: {err}")
            self.publish_status(extra={"goal_refused": str(err)})
            return
        self.loop.goal = goal
        self.has_goal = True
        self.audit.record(SOURCE, "allowed", f"goal {np.round(goal, 3).tolist()}", None)

    def measured(self) -> tuple[np.ndarray | None, np.ndarray | None, float | None, float]:
        with self._lock:
            if self._stamp is None:
                return None, None, None, 0.0
            return self._q.copy(), self._qd.copy(), time.monotonic() - self._stamp, self._stamp

    # -- outputs ---------------------------------------------------------------------------
    def hold_at_measured(self) -> None:
        """One hold command at the measured pose (or an empty trajectory without state)."""
        q, _, age, _ = self.measured()
        fresh = q is not None and age is not None and age <= 2 * self.period
        self.out.send_now(q if fresh else None)

    def _apply(self, step: Step, q: np.ndarray | None, age: float | None, stamp: float,
               t_read: float) -> None:
        if step.kind == "command":
            self.out.send(step.command)
            self.timing.command_sent(t_read, stamp)
        elif step.kind == "hold":
            # at the measured pose only when that pose is trustworthy and recent (an
            # e-stop or the goal can come while /joint_states is stale: holding at an old
            # pose would be a jump); otherwise the controller holds its own setpoint
            trusted = step.state != "holding" or self.loop.stats.guard == "nan_action"
            recent = age is not None and age <= self.loop.cfg.stale_periods * self.period
            self.out.send(q if trusted and recent else None)
            if step.state == "estopped" and self._estop_at is not None:
                self.timing.estop_reaction = time.monotonic() - self._estop_at
            self.get_logger().warning(f"{step.state}: {step.reason}")
            self.audit.record(SOURCE, "refused" if step.state in ("holding", "estopped")
                              else "allowed", f"hold: {step.reason}", self.loop.stats.guard)

    def warm_up(self) -> None:
        """The coming tick's computation on the latest state, discarded (`control_loop`
        calls it `warm_lead` s before a tick): observation, policy, the envelope's
        clearance test and the command's encoding, so that the tick finds them in the
        CPU caches. Publishes nothing and changes no decision."""
        if not self.has_goal or self.loop.finished:
            return
        q, qd, _, _ = self.measured()
        if q is None or qd is None:
            return
        self.loop.warm(q, qd)
        self.envelope.stream_covered(q, q if self.loop.ref is None else self.loop.ref)
        if np.isfinite(q).all():
            self.out.message(q)  # the next command overwrites every position byte

    # -- control step (called by `main` on the executor's thread) --------------------------
    def control_tick(self) -> None:
        """One control period's work; `main` calls it when `clock.due_in()` reaches 0."""
        if not self._running or self.interrupted.is_set():
            return
        t_tick = self.clock.tick()
        self.out.flush()
        if self.has_goal and not self.loop.finished:
            t_read = time.monotonic()
            q, qd, age, stamp = self.measured()
            if q is not None:
                self.timing.state_read(t_read)
            if q is not None and not self.dry_run and not self._listening:
                self._listening = self.out.listened()
            if q is not None and not self.dry_run and not self._listening:
                # a command nobody receives is lost silently: hold until one listens
                step = self.loop.block("no_controller", f"no controller is listening on "
                                       f"{self.command_topic}; is it running?")
            else:
                if q is not None:  # (the first state read with a controller listening)
                    self.timing.controller_listens(t_read)
                step = self.loop.step(t_read, q, qd, age, self.estopped)
            self._apply(step, q, age, stamp, t_read)
            if not self.dry_run:
                # for the next tick, checked after this one's publish: a call into the
                # middleware that costs 0.02-0.07 ms right after the thread wakes up
                self._listening = self.out.listened()
        if self.loop.state != self._last_state:  # published after this tick (control_loop)
            self._last_state = self.loop.state
            self._status_due = True
        if self.loop.finished and not self.out.pending:
            self.finished.set()
        self.clock.advance()
        self.clock.shift(self.phase.correction(t_tick))

    def state_overdue(self, now: float) -> bool:
        return self.phase.overdue(now)

    def state_waited(self, arrived: bool) -> None:
        self.timing.state_waits += 1
        self.timing.state_wait_misses += not arrived

    def status_due(self, room: float) -> bool:
        """Time for a status (on a change of state, else at 5 Hz), given `room` s to spare
        before the next tick; a status waits for a roomier gap, at most one period more."""
        since = time.monotonic() - self._last_status
        if not (self._status_due or since >= STATUS_PERIOD_S):
            return False
        return room > 0 or since >= STATUS_PERIOD_S + 2 * self.period + 0.05

    def publish_status(self, extra: dict[str, object] | None = None) -> None:
        self._status_due = False
        self._last_status = time.monotonic()
        st = self.loop.stats
        values: dict[str, object] = {
            "state": self.loop.state, "artifact": str(self.p["artifact"]),
            "task": self.loop.spec.task, "command_topic": self.command_topic,
            "dry_run": self.dry_run, "commands": st.commands, "holds": st.holds,
            "clipped": st.clipped, "speed_ratio": round(self.speed_ratio, 3),
            "distance_m": None if st.distance is None else round(st.distance, 4),
            "last_guard": st.guard, "last_guard_reason": st.guard_reason,
            "goal": np.round(self.loop.goal, 4).tolist() if self.has_goal else None,
            **{k: round(v, 4) for k, v in self.timing.figures().items()}, **(extra or {}),
        }
        status = DiagnosticStatus(level=bytes([LEVEL.get(self.loop.state, 0)]),
                                  name="robo_agent/policy_runner", hardware_id=self.spec.name,
                                  message=self.loop.state + (f": {st.guard_reason}"
                                                             if st.guard_reason else ""))
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_status.publish(msg)

    def shutdown(self) -> None:
        self._running = False
        if not self._closed:  # idempotent: the stream summary once, then close
            self._closed = True
            self.envelope.end_stream(SOURCE)
            self.audit.close()


def main(args: list[str] | None = None) -> int:
    """Entry point for `policy_runner` / `python -m robo_agent.ros.policy_runner --ros-args`."""
    from rclpy.signals import SignalHandlerOptions

    # Our own SIGINT handling: the context must stay up to send the final hold.
    rclpy.init(args=args if args is not None else sys.argv,
               signal_handler_options=SignalHandlerOptions.NO)
    node: PolicyRunnerNode | None = None
    code = 0
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                       signal.SIGTERM)}
    try:
        node = PolicyRunnerNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        priority = int(node.p["realtime_priority"])
        why_not = set_realtime_priority(priority) if priority else "off"
        if why_not not in (None, "off"):
            node.get_logger().warning(why_not)
        run_control_loop(node, executor, stop, bool(node.p["exit_when_done"]),
                         realtime=why_not is None)
        if stop.is_set():
            node.interrupted.set()
            node.shutdown()
            node.hold_at_measured()
            node.loop._set("done", "sigint", "interrupted (SIGINT): one hold at the measured pose")
            node.publish_status()
            node.get_logger().info("interrupted: hold sent at the measured pose")
            time.sleep(0.1)  # let DDS deliver the hold before the participant goes away
        elif node.loop.state in ("refused", "estopped"):
            code = 1
        if node is not None and not stop.is_set():
            node.publish_status()
            time.sleep(0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ArtifactError, RunnerRefused, RobotSpecError, SafetyPolicyError, ValueError,
            OSError, ImportError) as err:
        print(f"policy_runner: refused: {err}", file=sys.stderr)
        code = 2
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
