"""`robo-agent deploy` and `robo-agent rehearse` subcommands."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path


def _to_stderr(*parts: object) -> None:
    """Progress lines when stdout carries the one JSON object (`--json`)."""
    print(*parts, file=sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("deploy", help="run a policy artifact on the arm (policy_runner, "
                       "foreground; Ctrl-C holds and exits)")
    d.add_argument("artifact", type=Path)
    d.add_argument("--robot", default="", help="robot description ('' = the artifact's)")
    d.add_argument("--goal", nargs=3, type=float, metavar=("X", "Y", "Z"),
                   help="goal in the robot base frame, m (default: /robo_agent/policy/goal)")
    d.add_argument("--dry-run", action="store_true", help="publish to the preview topics only")
    d.add_argument("--max-duration", type=float, default=0.0, help="s (0 = until done)")
    d.add_argument("--safety", default="", help="safety policy name or YAML path")
    d.add_argument("--command-interface", choices=("trajectory", "position"),
                   default="trajectory")
    d.add_argument("--quiet", action="store_true",
                   help="no live status lines (the runner's own log only)")
    d.add_argument("--status-period", type=float, default=1.0, metavar="S",
                   help="live status: a line per state change and at most one per S s")
    d.add_argument("--allow-unrehearsed", action="store_true",
                   help="run without a passing rehearsal.json (audit-logged)")
    d.add_argument("--realtime-priority", type=int, default=50, metavar="P",
                   help="SCHED_FIFO priority of the runner (1-99, as policy.launch.xml; 0 = "
                   "normal scheduling; without the right: a warning, normal scheduling)")
    d.set_defaults(func=_cmd_deploy)

    r = sub.add_parser("rehearse", help="rehearse an artifact: sim_robot + policy_runner over "
                       "DDS vs the Gymnasium env on the same goals; writes rehearsal.json")
    r.add_argument("artifact", type=Path)
    r.add_argument("--episodes", type=int, default=10)
    r.add_argument("--latency-ms", type=float, nargs="*", default=[],
                   help="added actuation latencies to re-run with (e.g. 0 20 50)")
    r.add_argument("--command-interface", choices=("trajectory", "position"),
                   default="trajectory")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--record", metavar="OUT",
                   help="record sim_robot's camera during the ROS episodes: out.gif, out.mp4 "
                   "(ffmpeg) or a folder of PNG frames (watch a headless rehearsal)")
    r.add_argument("--record-size", default="320x240", metavar="WxH",
                   help="recorded frame size (default 320x240)")
    r.add_argument("--record-fps", type=float, default=10.0, metavar="HZ",
                   help="camera frames per second while recording, 1..30 (default 10)")
    r.set_defaults(func=_cmd_rehearse)


def deploy_command(args: argparse.Namespace) -> list[str]:
    params = {"artifact": str(Path(args.artifact).resolve()), "robot": args.robot,
              "max_duration": f"{args.max_duration:g}", "dry_run": str(args.dry_run).lower(),
              "safety": args.safety, "command_interface": args.command_interface,
              "rehearsal_required": str(not args.allow_unrehearsed).lower(),
              "realtime_priority": str(args.realtime_priority)}
    if args.goal:
        params["goal"] = "[" + ", ".join(f"{g:g}" for g in args.goal) + "]"
    cmd = [sys.executable, "-m", "robo_agent.ros.policy_runner", "--ros-args"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v if v != '' else repr('')}"]
    return cmd


def _cmd_deploy(args: argparse.Namespace) -> int:
    if args.allow_unrehearsed:
        from robo_agent.core.audit import AuditLog

        audit = AuditLog(Path.home() / ".ros" / "robo_agent" / "audit.jsonl")
        audit.record("deploy", "allowed", f"--allow-unrehearsed: {args.artifact} runs without "
                     "a passing rehearsal", "rehearsal_required")
        audit.close()
        print("robo-agent deploy: WARNING: running without a passing rehearsal "
              "(audit-logged)", file=sys.stderr)
    printer = None
    if not args.quiet:
        from robo_agent.deploy.status import StatusPrinter

        printer = StatusPrinter(period=args.status_period)
    proc = subprocess.Popen(deploy_command(args))
    # Ctrl-C reaches the runner too (same process group); it holds and exits 0.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        if printer is not None:
            time.sleep(0.2)  # the runner's final status is in flight when it exits
            printer.close()


def _cmd_rehearse(args: argparse.Namespace) -> int:
    from robo_agent.core.artifact import ArtifactError
    from robo_agent.deploy.rehearse import rehearse
    from robo_agent.sim.record import RecordError

    if args.episodes < 1:
        print("robo-agent rehearse: --episodes must be >= 1", file=sys.stderr)
        return 2
    try:
        result = rehearse(args.artifact, args.episodes, args.latency_ms,
                          args.command_interface,
                          log=_to_stderr if args.json else print, record=args.record,
                          record_fps=args.record_fps, record_size=args.record_size)
    except (ArtifactError, RecordError) as err:
        print(f"robo-agent rehearse: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ROS success {result['ros_success']:.2f}, direct {result['direct_success']:.2f}, "
              f"parity {result['parity']:.2f}, McNemar p {result['mcnemar_p']:.3f}, median "
              f"final error {result['final_error_m'] * 1000:.1f} mm, loop "
              f"{result['loop_rate_hz']} Hz; latency curve {result['latency_curve']}")
        print("PASSED: rehearsal.json written" if result["passed"] else "NOT PASSED")
    return 0 if result["passed"] else 1
