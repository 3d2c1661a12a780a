"""The policy runner's ROS parameters: name -> (default, description).

Declared by `policy_runner.PolicyRunnerNode` with these descriptions (`ros2 param
describe` shows them); `launch/policy.launch.xml` sets some of them.
"""

from __future__ import annotations

from robo_agent.ros import interfaces as ifc

STATUS_TOPIC = "/robo_agent/policy/status"
GOAL_TOPIC = "/robo_agent/policy/goal"

PARAMETERS: dict[str, tuple[object, str]] = {
    "artifact": ("", "policy artifact folder (policy.onnx + policy.json)"),
    "robot": ("", "robot description name or YAML path ('' = the artifact's robot)"),
    "goal": ("", "[x, y, z] in the robot base frame, m ('' = wait for goal_topic)"),
    "goal_topic": (GOAL_TOPIC, "geometry_msgs/PoseStamped goals in the robot base frame"),
    "rate_hz": (0.0, "control rate, Hz (0 = the artifact's control rate)"),
    "max_duration": (0.0, "s from the first command until the runner stops (0 = none)"),
    "dry_run": (False, "true: commands go to /robo_agent/preview/<topic> only"),
    "safety": ("", "safety policy name in config/safety or a YAML path ('' = default)"),
    "rehearsal_required": (False, "refuse an artifact without a passing rehearsal.json"),
    "command_interface": ("trajectory", "'trajectory' (JointTrajectory to the arm "
                          "controller) or 'position' (Float64MultiArray to the position one)"),
    "joint_states_topic": (ifc.JOINT_STATES_TOPIC, "JointState input (joints matched by name)"),
    "estop_topic": (ifc.ESTOP_TOPIC, "latched std_msgs/Bool e-stop"),
    "status_topic": (STATUS_TOPIC, "diagnostic_msgs/DiagnosticArray status output"),
    "ramp_time": (0.2, "s of soft start: actions scale from 0 to 1"),
    "success_steps": (3, "control steps within the success radius that end the run"),
    "actuation_latency_ms": (0.0, "extra delay before each command is published (rehearsal)"),
    "audit_log": ("", "JSONL audit log ('' = ~/.ros/robo_agent/audit.jsonl)"),
    "exit_when_done": (True, "exit the process when the run ends (done/refused/e-stop)"),
    "realtime_priority": (0, "SCHED_FIFO priority 1-99 for the control thread (0 = normal "
                          "scheduling; a robot launch sets 50 like ros2_control)"),
    "phase_lead": (0.0002, "s after a /joint_states arrival that a phase-locked tick runs"),
    "state_wait": (0.0003, "s a phase-locked tick may wait for a /joint_states that is late"),
    "warm_lead": (0.0015, "s before a tick that its computation runs once on the latest "
                  "state, discarded, so the tick finds the policy in the CPU caches (0 = off; "
                  "under 0.8 ms it leaves the warm-up no room and is off too)"),
}
