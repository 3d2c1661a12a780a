"""Policy tools of the `ToolRunner`: list_policies, run_policy, stop_policy, policy_status.

Artifacts live in a policy folder (the `policies` parameter, default
`~/.ros/robo_agent/policies`), one sub-folder per policy (its name). `run_policy` is a
motion tool: it passes the same gates as any motion (e-stop, fresh state, workspace,
confirmation), refuses an artifact that does not fit this robot or, where the node's
`rehearsal_required` is set, one without a passing rehearsal for its exact sha256; then it
starts a `policy_runner` process (the same executable `robo-agent deploy` runs) and waits
for it to finish. `stop`, `stop_policy` and the e-stop interrupt it: SIGINT, so the
runner sends one hold at the measured pose and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from robo_agent.core.artifact import (
    ArtifactError,
    PolicySpec,
    load_rehearsal,
    load_spec,
    rehearsal_problem,
)
from robo_agent.core.observation import compatibility_problems
from robo_agent.core.tools import ToolError, ToolResult

DEFAULT_DURATION = 30.0  # s a policy runs when the call gives no duration
START_GRACE = 20.0  # s allowed for the runner process to start (imports, discovery)


def default_policies_dir() -> Path:
    return Path.home() / ".ros" / "robo_agent" / "policies"


class PolicyTools:
    """Policy tools (mixed into ToolRunner, which provides `node`, `env`, `spec`, `_abort`,
    `_fk`, `_state_for_motion` and `_needs_confirmation`)."""

    _policy_proc: subprocess.Popen | None = None
    _policy_info: dict[str, Any] | None = None

    def _policies_dir(self) -> Path:
        text = str(self.node.p.get("policies", "") or "")
        return Path(text).expanduser() if text else default_policies_dir()

    def _find_policy(self, tool: str, name: str) -> tuple[Path, PolicySpec]:
        folder = self._policies_dir() / name
        if "/" in name or name.startswith(".") or not (folder / "policy.json").is_file():
            known = [p.name for p in self._artifacts()]
            raise self.env.refuse(tool, "unavailable", f"no policy named '{name}' in "
                                  f"{self._policies_dir()} (installed: {known or 'none'})",
                                  "policies")
        try:
            return folder, load_spec(folder, verify=True)
        except ArtifactError as err:
            raise self.env.refuse(tool, "refused", str(err), "artifact") from None

    def _artifacts(self) -> list[Path]:
        root = self._policies_dir()
        if not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if (p / "policy.json").is_file())

    # -- tools -----------------------------------------------------------------------------
    def _tool_list_policies(self, args: Any) -> ToolResult:
        rows = []
        for folder in self._artifacts():
            row: dict[str, Any] = {"name": folder.name}
            try:
                spec = load_spec(folder, verify=True)
            except ArtifactError as err:
                rows.append({**row, "usable": False, "problem": str(err)})
                continue
            problems = compatibility_problems(spec, self.spec)
            try:
                record = load_rehearsal(folder)
            except ArtifactError as err:
                record, problems = None, [*problems, str(err)]
            rehearsal = "missing" if record is None else (
                "passed" if record.passed and record.artifact_sha256 == spec.model_sha256
                else "failed" if record.artifact_sha256 == spec.model_sha256 else "stale")
            row.update(task=spec.task, robot=spec.robot, score=spec.provenance.score,
                       rehearsal=rehearsal, usable=not problems)
            if record is not None:
                row["rehearsal_parity"] = record.parity
            if problems:
                row["problem"] = "; ".join(problems)
            rows.append(row)
        where = str(self._policies_dir())
        text = ", ".join(f"{r['name']} ({r.get('task', '?')}, score {r.get('score')}, "
                         f"rehearsal {r.get('rehearsal', '?')})" for r in rows)
        return ToolResult(tool="list_policies", ok=True, data={"folder": where,
                                                               "policies": rows},
                          message=f"{len(rows)} policies in {where}" + (f": {text}" if rows
                                                                         else ""))

    def _tool_run_policy(self, args: Any, confirmed: bool = False) -> ToolResult:
        tool = "run_policy"
        folder, spec = self._find_policy(tool, args.name)
        problems = compatibility_problems(spec, self.spec)
        if problems:
            raise self.env.refuse(tool, "refused", f"{folder / 'policy.json'}: "
                                  + "; ".join(problems), "artifact")
        if bool(self.node.p.get("rehearsal_required", False)):
            why = rehearsal_problem(folder, spec)
            if why:
                raise self.env.refuse(tool, "refused", f"rehearsal required on this robot: "
                                      f"{why}", "rehearsal_required")
        self._state_for_motion(tool)
        if args.goal is None:
            raise self.env.refuse(tool, "invalid_arguments", f"policy '{args.name}' "
                                  f"({spec.task}) needs a goal [x, y, z] in "
                                  f"{self.spec.base_frame}, m", "goal")
        goal = np.asarray(args.goal, dtype=float)
        self.env.check_ee_point(tool, goal, "policy goal")
        duration = float(args.duration or DEFAULT_DURATION)
        if self.env.confirmation_required and not confirmed:
            payload = {"tool": tool, "kind": "policy", "name": args.name,
                       "goal": goal.tolist(), "duration": duration}
            return self._needs_confirmation(tool, payload, {
                "tool": tool, "policy": args.name, "task": spec.task,
                "goal_m": goal.tolist(), "duration_s": duration})
        return self._run_policy(folder, spec, goal, duration)

    def _run_policy(self, folder: Path, spec: PolicySpec, goal: np.ndarray,
                    duration: float) -> ToolResult:
        tool = "run_policy"
        params = {"artifact": str(folder), "robot": str(self.node.p["robot"]),
                  "goal": "[" + ", ".join(f"{g:.6f}" for g in goal) + "]",
                  "max_duration": f"{duration:g}", "dry_run": str(self.node.dry_run).lower(),
                  "safety": str(self.node.p.get("safety_policy", "")),
                  "rehearsal_required": "false",  # checked above, by this tool
                  "audit_log": str(self.node.audit_path),
                  "joint_states_topic": str(self.node.p["joint_states_topic"]),
                  "estop_topic": str(self.node.p["estop_topic"])}
        cmd = [sys.executable, "-m", "robo_agent.ros.policy_runner", "--ros-args"]
        for k, v in params.items():
            cmd += ["-p", f"{k}:={v if v != '' else repr('')}"]
        env = dict(os.environ, ROS_DOMAIN_ID=str(self.node.context.get_domain_id()),
                   PYTHONUNBUFFERED="1")
        self.env.allow(tool, f"policy {folder.name} to {np.round(goal, 3).tolist()} for "
                       f"{duration:g} s", artifact_sha256=spec.model_sha256)
        self._abort.clear()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(
            b.decode(errors="replace").rstrip() for b in proc.stdout), daemon=True)  # type: ignore[union-attr]
        reader.start()
        self._policy_proc = proc
        self._policy_info = {"name": folder.name, "goal": goal.tolist(), "started": time.time(),
                             "duration_s": duration}
        t0 = time.monotonic()
        stopped = ""
        try:
            while proc.poll() is None:
                if self._abort.is_set():
                    stopped = "emergency stop" if self.node.estopped else "stop"
                    proc.send_signal(signal.SIGINT)  # the runner holds, then exits 0
                    proc.wait(timeout=10)
                    break
                if time.monotonic() - t0 > duration + START_GRACE:
                    stopped = "timeout"
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=10)
                    break
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=2)
            self._policy_proc = None
        return self._policy_result(folder.name, spec, goal, proc.returncode, stopped, lines,
                                   time.monotonic() - t0)

    def _policy_result(self, name: str, spec: PolicySpec, goal: np.ndarray, code: int,
                       stopped: str, lines: list[str], elapsed: float) -> ToolResult:
        tool = "run_policy"
        snap = self.node.snapshot()
        data: dict[str, Any] = {"policy": name, "task": spec.task, "goal": goal.tolist(),
                                "exit_code": code, "elapsed_s": round(elapsed, 2),
                                "dry_run": self.node.dry_run, "log_tail": lines[-6:]}
        self._policy_info = {**(self._policy_info or {}), "finished": True, **data}
        if code == 2:
            reason = next((ln for ln in reversed(lines) if "refused" in ln), "runner refused")
            raise ToolError("refused", reason)
        threshold = float((spec.deployment or {}).get("distance_threshold", 0.05))
        if snap is not None:
            pos = np.asarray(self._fk(snap.q)[0])
            err = float(np.linalg.norm(pos - goal))
            data.update(end_effector_position=np.round(pos, 4).tolist(),
                        final_error_m=round(err, 4))
        else:
            err = float("inf")
        reached = err < threshold
        data["reached"] = bool(reached)
        if stopped in ("stop", "emergency stop"):
            return ToolResult(tool=tool, ok=False, error="estop" if self.node.estopped
                              else "refused", data=data,
                              message=f"policy {name} interrupted by {stopped} after "
                                      f"{elapsed:.1f} s; hold sent at the measured pose")
        if self.node.dry_run:
            return ToolResult(tool=tool, ok=True, data=data, message=f"dry run: policy {name} "
                              "published to the preview topic only; the robot was not moved")
        msg = (f"policy {name} {'reached' if reached else 'did not reach'} the goal "
               f"{np.round(goal, 3).tolist()} m: final error {err * 1000:.1f} mm "
               f"(success radius {threshold * 1000:.0f} mm) after {elapsed:.1f} s")
        return ToolResult(tool=tool, ok=bool(reached), error=None if reached else "timeout",
                          data=data, message=msg)

    def _tool_stop_policy(self, args: Any) -> ToolResult:
        proc = self._policy_proc
        if proc is None or proc.poll() is not None:
            return ToolResult(tool="stop_policy", ok=True, data={"running": False},
                              message="no policy is running; nothing changed")
        self._abort.set()  # run_policy's wait sends SIGINT: the runner holds and exits
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < 10:
            time.sleep(0.02)
        self.env.allow("stop_policy", "policy stopped")
        return ToolResult(tool="stop_policy", ok=True, data={"running": False,
                                                             "exit_code": proc.returncode},
                          message="policy stopped: hold sent at the measured pose")

    def _tool_policy_status(self, args: Any) -> ToolResult:
        proc, info = self._policy_proc, self._policy_info
        running = proc is not None and proc.poll() is None
        data = {"running": running, **(info or {})}
        if info is None:
            return ToolResult(tool="policy_status", ok=True, data=data,
                              message="no policy has run since this executor started")
        state = "running" if running else "finished"
        return ToolResult(tool="policy_status", ok=True, data=data,
                          message=f"policy {info['name']} {state}; goal {info['goal']}")
