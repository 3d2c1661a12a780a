"""`robo-agent sim`: a scripted controller runs a task through the env, printing success and speed.

    robo-agent sim --robot panda --task reach [--episodes N] [--gui] [--seed S]
                   [--record out.gif | out.mp4 | FRAMES_DIR]

The controller acts through the same joint-space action interface a policy uses
(`robo_agent.sim.scripted`). Success is the env's `is_success` at the end of each
episode; "env steps/s" counts only the time spent inside `env.step` (physics and the
env itself), "control steps/s" includes the controller's IK.
"""

from __future__ import annotations

import argparse
import time

from robo_agent.core.robot_spec import RobotSpecError

TASK_CHOICES = ["reach", "push", "pick_and_place"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this part's subcommands to the `robo-agent` parser."""
    p = sub.add_parser(
        "sim",
        help="run a scripted controller on a sim task; prints success rate and env steps/s",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--robot", default="panda",
                   help="robot description name (default: panda; see `robo-agent robots`)")
    p.add_argument("--task", default="reach",
                   help=f"task: {', '.join(TASK_CHOICES)} (default reach)")
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    p.add_argument("--gui", action="store_true", help="open the PyBullet window (real time)")
    p.add_argument("--n-substeps", type=int, default=20,
                   help="physics steps per control step (default 20 at 1/500 s -> 25 Hz)")
    p.add_argument("--record", metavar="OUT",
                   help="record the default camera: out.gif, out.mp4 (ffmpeg) or a "
                   "folder of PNG frames (headless: watch a run without a display)")
    p.add_argument("--record-size", default="320x240", metavar="WxH",
                   help="recorded frame size (default 320x240)")
    p.add_argument("--record-every", type=int, default=1, metavar="N",
                   help="record every N-th control step (default 1)")
    p.set_defaults(func=_cmd_sim)


def _cmd_sim(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.progress import track
    from robo_agent.sim import make_env
    from robo_agent.sim.scripted import ScriptedController

    console = Console()
    if args.episodes < 1:
        print(f"robo-agent sim: --episodes must be >= 1, got {args.episodes}", file=sys.stderr)
        return 2
    try:
        env = make_env(args.robot, args.task, n_substeps=args.n_substeps,
                       render_mode="human" if args.gui else None)
    except RobotSpecError:
        raise  # the main CLI prints it
    except (ValueError, RuntimeError) as err:
        print(f"robo-agent sim: {err}", file=sys.stderr)
        return 2
    u = env.unwrapped
    recorder, size = None, (0, 0)
    if args.record:
        from robo_agent.sim.record import Recorder, RecordError, parse_frame_size

        try:
            size = parse_frame_size(args.record_size)
            if args.record_every < 1:
                raise ValueError("--record-every must be >= 1")
            recorder = Recorder(args.record, fps=1.0 / (u.control_dt * args.record_every))
        except (ValueError, RecordError) as err:
            env.close()
            print(f"robo-agent sim: --record: {err}", file=sys.stderr)
            return 2
    controller = ScriptedController(u)
    successes, env_time, env_steps = 0, 0.0, 0
    start = time.perf_counter()
    try:
        for ep in track(range(args.episodes), description=f"{u.robot_name} {u.task_name}",
                        console=console, transient=True,
                        disable=args.gui or not console.is_terminal):
            obs, _ = env.reset(seed=args.seed + ep)
            controller.reset()
            done, info = False, {}
            while not done:
                action = controller.act(obs)
                t0 = time.perf_counter()
                obs, _, terminated, truncated, info = env.step(action)
                env_time += time.perf_counter() - t0
                env_steps += 1
                done = terminated or truncated
                if recorder is not None and env_steps % args.record_every == 0:
                    recorder.add(u.sim.render_rgb(*size))
            successes += bool(info["is_success"])
    finally:
        controller.close()
        env.close()
        if recorder is not None:
            console.print(recorder.close())
    wall = time.perf_counter() - start
    console.print(
        f"{u.robot_name} {u.task_name}: success {successes}/{args.episodes} "
        f"({successes / args.episodes:.0%}), {env_steps} env steps, "
        f"{env_steps / env_time:.0f} env steps/s, {env_steps / wall:.0f} control steps/s "
        f"(with controller IK), control dt {u.control_dt * 1000:.0f} ms",
        soft_wrap=True,
    )
    return 0
