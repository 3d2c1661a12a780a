"""Robot-path kinematics and the whole-arm safety envelope, against the PyBullet path, one run.

1. Forward kinematics per call: `Kinematics.ee_pose` (Pinocchio) vs the PyBullet path the
   bridge used before (reset the joints of a DIRECT client, read the link state), per
   robot, the same configurations, interleaved in blocks of 100 calls. Goal: Pinocchio
   >= 10x faster.
2. IK per call: `Kinematics.ik` vs the PyBullet path as it was (commit 22463d0:
   `calculateInverseKinematics` refined from the seed, then home, then 4 fixed starts,
   10 rounds each), same targets (reachable poses near home), position and full pose.
3. Safety envelope with whole-arm collision (spheres + exact hulls, a user keep-out box
   and the base column): `plan_joint_motion` of one 2 s trajectory, and the 1000 commands
   `check_stream_command` sees when the same 2 s are streamed at 500 Hz. Goal p99 <= 1 ms.
4. `arm_bridge` RSS after serving calls, robot path vs the same node with the previous
   import set (pybullet, gymnasium, a DIRECT client with the robot loaded), same run.

    python bench/kinematics.py            # --calls 2000 --ik 100 --trajectories 100

Prints every figure and the ratios; writes a record `docs/benchmarks/kinematics-<time>.json`
(bench/record.py: figures, git commit, load) and the per-robot detail in
`docs/benchmarks/detail/kinematics.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import psutil
from record import write_record  # bench/record.py (the script's folder is on sys.path)
from robo_agent.sim.facade import PyBullet
from robo_agent.sim.robot import SimRobot

from robo_agent.core.audit import AuditLog
from robo_agent.core.robot_spec import RobotSpec, load_robot
from robo_agent.core.safety import QUINTIC_PEAK_SPEED, SafetyEnvelope
from robo_agent.core.safety_policy import parse_policy
from robo_agent.kinematics import Kinematics

ROOT = Path(__file__).resolve().parents[1]
ROBOTS = ("panda", "iiwa", "xarm6")


def per_call(fn, args: list, repeat: int = 1) -> np.ndarray:
    """Seconds per call of fn(*a) for each a in args."""
    out = np.empty(len(args))
    for i, a in enumerate(args):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn(*a)
        out[i] = (time.perf_counter() - t0) / repeat
    return out


class BulletPath:
    """The PyBullet FK/IK the bridge used before (a private DIRECT client, no stepping)."""

    def __init__(self, spec: RobotSpec) -> None:
        self.spec = spec
        self.sim = PyBullet("direct")
        self.robot = SimRobot(self.sim, spec, base_position=(0.0, 0.0, 0.0))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.sim.reset_joints(self.robot.body, self.robot.joints, q)
        return self.robot.ee_pose()

    def inverse(self, target: np.ndarray, orn: np.ndarray | None, seed: np.ndarray,
                tolerance: float = 1e-3, max_rounds: int = 10) -> tuple[np.ndarray, float]:
        lo, hi, home = self.spec.lower, self.spec.upper, self.spec.home_array
        rng = np.random.default_rng(0)
        starts = [np.clip(seed, lo, hi), home] + [rng.uniform(lo, hi) for _ in range(4)]
        best_q, best_err = starts[0], np.inf
        for q0 in starts:
            q = q0
            for r in range(max_rounds):
                self.sim.reset_joints(self.robot.body, self.robot.joints, q)
                q = np.clip(self.sim.inverse_kinematics(
                    self.robot.body, self.robot.ee_link, target, orn, joints=self.robot.joints,
                    rest_pose=q0 if r < max_rounds // 2 else None, max_iterations=100), lo, hi)
                err = float(np.linalg.norm(self.forward(q)[0] - target))
                if err < best_err:
                    best_q, best_err = q, err
                if err < tolerance:
                    return best_q, best_err
        return best_q, best_err

    def close(self) -> None:
        self.sim.close()


def ms(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q) * 1e3)


def bench_fk_ik(spec: RobotSpec, calls: int, n_ik: int) -> dict:
    kin, bullet = Kinematics.for_robot(spec), BulletPath(spec)
    rng = np.random.default_rng(1)
    qs = [(q,) for q in rng.uniform(spec.lower, spec.upper, (calls, spec.dof))]
    per_call(kin.ee_pose, qs[:50])  # warm up
    per_call(bullet.forward, qs[:50])
    # Interleaved in blocks of 100 calls, so that a slow spell of the shared machine
    # lands on both paths rather than on whichever ran during it.
    blocks = [(per_call(kin.ee_pose, qs[i:i + 100]), per_call(bullet.forward, qs[i:i + 100]))
              for i in range(0, len(qs), 100)]
    fk_pin = np.concatenate([b[0] for b in blocks])
    fk_bul = np.concatenate([b[1] for b in blocks])
    near = np.clip(spec.home_array + rng.uniform(-0.5, 0.5, (n_ik, spec.dof)),
                   spec.lower, spec.upper)
    poses = [kin.ee_pose(q) for q in near]
    seed = spec.home_array
    ik_pos_pin = per_call(lambda p: kin.ik(p, q0=seed, position_tolerance=1e-3),
                          [(p,) for p, _ in poses])
    ik_pos_bul = per_call(lambda p: bullet.inverse(p, None, seed), [(p,) for p, _ in poses])
    ik_pose_pin = per_call(lambda p, o: kin.ik(p, o, q0=seed, position_tolerance=1e-3),
                           poses)
    ik_pose_bul = per_call(lambda p, o: bullet.inverse(p, o, seed), poses)
    pin_ok = np.mean([kin.ik(p, o, q0=seed, position_tolerance=1e-3).converged
                      for p, o in poses])
    bul_err = [bullet.inverse(p, o, seed)[1] for p, o in poses]
    bullet.close()
    return {
        "fk_us": {"pinocchio_p50": ms(fk_pin, 50) * 1e3, "pybullet_p50": ms(fk_bul, 50) * 1e3,
                  "speedup_p50": float(np.median(fk_bul) / np.median(fk_pin))},
        "ik_position_ms": {"pinocchio_p50": ms(ik_pos_pin, 50),
                           "pybullet_p50": ms(ik_pos_bul, 50),
                           "speedup_p50": float(np.median(ik_pos_bul) / np.median(ik_pos_pin))},
        "ik_pose_ms": {"pinocchio_p50": ms(ik_pose_pin, 50), "pinocchio_p99": ms(ik_pose_pin, 99),
                       "pybullet_p50": ms(ik_pose_bul, 50), "pybullet_p99": ms(ik_pose_bul, 99),
                       "speedup_p50": float(np.median(ik_pose_bul) / np.median(ik_pose_pin)),
                       "pinocchio_converged": float(pin_ok),
                       "pybullet_within_1mm": float(np.mean(np.array(bul_err) < 1e-3))},
    }


def bench_envelope(spec: RobotSpec, n: int) -> dict:
    kin = Kinematics.for_robot(spec)
    policy = parse_policy({"hard_limits": {"keep_out": [
        {"name": "shelf", "min": [0.5, 0.35, 0.0], "max": [0.8, 0.6, 0.5]}]}})
    env = SafetyEnvelope(spec, policy, AuditLog(None), kinematics=kin)
    rng = np.random.default_rng(2)
    plan_t, stream_t = [], []
    dt, refused = 0.002, 0
    while len(plan_t) < n:
        # A joint move that takes 2 s at the velocity cap (quintic profile).
        direction = rng.uniform(-1.0, 1.0, spec.dof)
        direction /= np.max(np.abs(direction / env.vmax))
        q0 = np.clip(spec.home_array + rng.uniform(-0.3, 0.3, spec.dof), env.lower, env.upper)
        q1 = np.clip(q0 + direction * 2.0 / QUINTIC_PEAK_SPEED, env.lower, env.upper)
        t0 = time.perf_counter()
        try:
            plan = env.plan_joint_motion("bench", q0, q1)
        except Exception:  # refusals are timed too
            refused += 1
            plan_t.append(time.perf_counter() - t0)
            continue
        plan_t.append(time.perf_counter() - t0)
        if len(stream_t) < 3000:
            q = q0
            for _, qw, _ in plan.waypoints(round(plan.duration / dt)):
                t1 = time.perf_counter()
                try:
                    q = env.check_stream_command("bench", q, qw, dt)
                except Exception:
                    break
                stream_t.append(time.perf_counter() - t1)
    env.end_stream("bench")
    return {"plan_2s_ms": {"p50": ms(np.array(plan_t), 50), "p99": ms(np.array(plan_t), 99),
                           "refused": refused, "trajectories": n},
            "stream_ms": {"p50": ms(np.array(stream_t), 50), "p99": ms(np.array(stream_t), 99),
                          "commands": len(stream_t)},
            "spheres": len(kin.sphere_radii)}


def bridge_rss() -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from ros import Listener, spawn, stop  # bench/ros.py helpers

    domain = random.randint(101, 200)
    out = {}
    legacy = ("import gymnasium, robo_agent.sim, robo_agent.sim.env\n"
              "from robo_agent.sim.facade import PyBullet\n"
              "from robo_agent.sim.robot import SimRobot\n"
              "from robo_agent.core.robot_spec import load_robot\n"
              "_sim = PyBullet('direct'); SimRobot(_sim, load_robot('panda'))\n"
              "from robo_agent.ros.arm_bridge import main\nmain()\n")
    with TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim = spawn("sim_robot", domain, tmp / "sim.log", robot="panda")
        listener = Listener(domain)
        try:
            for label in ("robot_path", "previous_import_set"):
                if label == "robot_path":
                    bridge = spawn("arm_bridge", domain, tmp / f"{label}.log", robot="panda",
                                   safety_policy="unattended")
                else:
                    env = dict(os.environ, ROS_DOMAIN_ID=str(domain),
                               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
                    bridge = subprocess.Popen(
                        [sys.executable, "-c", legacy, "--ros-args", "-p", "robot:=panda",
                         "-p", "safety_policy:=unattended"], env=env,
                        stdout=(tmp / f"{label}.log").open("wb"), stderr=subprocess.STDOUT)
                try:
                    t0 = time.monotonic()
                    while True:
                        try:
                            if listener.bridge_call(f"{label}-ping", "get_robot_state", {},
                                                    timeout=1.0)["ok"]:
                                break
                        except TimeoutError:
                            pass
                        if time.monotonic() - t0 > 60:
                            raise RuntimeError((tmp / f"{label}.log").read_text()[-2000:])
                    for i in range(20):
                        listener.bridge_call(f"{label}{i}", "get_robot_state", {})
                    q1 = 0.1 if label == "robot_path" else 0.0
                    listener.bridge_call(f"{label}m", "move_joints",
                                         {"joints": {"panda_joint1": q1}})
                    out[label] = psutil.Process(bridge.pid).memory_info().rss / 2**20
                finally:
                    stop(bridge)
        finally:
            listener.close()
            stop(sim)
    out["ratio"] = out["robot_path"] / out["previous_import_set"]
    return out


ROWS = [
    {"id": "kinematics 1", "goal": "FK per call, Pinocchio ≥ 10× the PyBullet path (same run)",
     "measured": "**{fk_speedup_panda:.1f}× / {fk_speedup_iiwa:.1f}× / {fk_speedup_xarm6:.1f}×** "
                 "panda / iiwa / xarm6 ({fk_pin_panda_us:.1f} µs vs {fk_pyb_panda_us:.1f} µs p50 "
                 "on the Panda)",
     "check": ["fk_speedup_min", ">=", 10.0]},
    {"id": "kinematics 2", "goal": "whole-arm envelope check of one 2 s trajectory p99 ≤ 1 ms",
     "measured": "p50 {plan_p50_max_ms:.2f} ms, **p99 {plan_p99_max_ms:.2f} ms** (worst robot); "
                 "streamed at 500 Hz p99 {stream_p99_max_ms:.2f} ms per command",
     "check": ["plan_p99_max_ms", "<=", 1.0]},
    {"id": "kinematics 3", "goal": "`arm_bridge` RSS with the robot install vs the previous "
                                   "import set (same run)",
     "measured": "**{rss_robot_mb:.0f} MB vs {rss_previous_mb:.0f} MB** ({rss_ratio:.2f}×)",
     "check": ["rss_ratio", "<", 1.0]},
]


def summary_figures(record: dict) -> dict[str, float]:
    """The flat figures of the summary rows, from the per-robot detail."""
    r = record["robots"]
    f: dict[str, float] = {}
    for name, d in r.items():
        f[f"fk_speedup_{name}"] = round(d["fk_us"]["speedup_p50"], 2)
    f["fk_speedup_min"] = min(f[f"fk_speedup_{n}"] for n in r)
    f["fk_pin_panda_us"] = round(r["panda"]["fk_us"]["pinocchio_p50"], 2)
    f["fk_pyb_panda_us"] = round(r["panda"]["fk_us"]["pybullet_p50"], 2)
    f["plan_p50_max_ms"] = round(max(d["envelope"]["plan_2s_ms"]["p50"] for d in r.values()), 3)
    f["plan_p99_max_ms"] = round(max(d["envelope"]["plan_2s_ms"]["p99"] for d in r.values()), 3)
    f["stream_p99_max_ms"] = round(max(d["envelope"]["stream_ms"]["p99"] for d in r.values()), 3)
    rss = record.get("arm_bridge_rss_mb")
    if rss:
        f.update(rss_robot_mb=round(rss["robot_path"], 1),
                 rss_previous_mb=round(rss["previous_import_set"], 1),
                 rss_ratio=round(rss["ratio"], 3))
    return f



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="FK calls per robot and path")
    ap.add_argument("--ik", type=int, default=100, help="IK targets per robot")
    ap.add_argument("--trajectories", type=int, default=100, help="2 s trajectories per robot")
    ap.add_argument("--no-rss", action="store_true", help="skip the arm_bridge RSS runs")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    record: dict = {"robots": {}}
    for name in ROBOTS:
        spec = load_robot(name)
        r = bench_fk_ik(spec, args.calls, args.ik)
        r["envelope"] = bench_envelope(spec, args.trajectories)
        record["robots"][name] = r
        fk, ikp, ik6, ev = r["fk_us"], r["ik_position_ms"], r["ik_pose_ms"], r["envelope"]
        print(f"{name}: FK p50 Pinocchio {fk['pinocchio_p50']:.2f} us vs PyBullet "
              f"{fk['pybullet_p50']:.2f} us -> {fk['speedup_p50']:.1f}x (goal >= 10x)")
        print(f"  IK position p50 {ikp['pinocchio_p50']:.3f} vs {ikp['pybullet_p50']:.3f} ms "
              f"({ikp['speedup_p50']:.1f}x); full pose p50 {ik6['pinocchio_p50']:.3f} vs "
              f"{ik6['pybullet_p50']:.3f} ms ({ik6['speedup_p50']:.1f}x), converged "
              f"{ik6['pinocchio_converged']:.0%} vs PyBullet within 1 mm "
              f"{ik6['pybullet_within_1mm']:.0%}")
        print(f"  envelope, whole arm ({ev['spheres']} spheres): 2 s plan p50/p99 "
              f"{ev['plan_2s_ms']['p50']:.3f}/{ev['plan_2s_ms']['p99']:.3f} ms (goal p99 <= 1 "
              f"ms; {ev['plan_2s_ms']['refused']} of {ev['plan_2s_ms']['trajectories']} "
              f"refused); streamed at 500 Hz p50/p99 {ev['stream_ms']['p50']:.3f}/"
              f"{ev['stream_ms']['p99']:.3f} ms per command ({ev['stream_ms']['commands']})")
    if not args.no_rss:
        rss = bridge_rss()
        record["arm_bridge_rss_mb"] = rss
        print(f"arm_bridge RSS: robot path {rss['robot_path']:.0f} MB vs previous import set "
              f"{rss['previous_import_set']:.0f} MB -> {rss['ratio']:.2f}x")
    record.update(time=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  load_average=[load0, os.getloadavg()[0]], args=vars(args))
    detail = ROOT / "docs" / "benchmarks" / "detail" / "kinematics.json"
    detail.parent.mkdir(parents=True, exist_ok=True)
    detail.write_text(json.dumps(record, indent=1) + "\n")
    path = write_record("kinematics", summary_figures(record), ROWS,
                        load_before=(load0, 0.0, 0.0),
                        notes=f"per-robot detail in {detail.relative_to(ROOT)}")
    # ROBO_AGENT_BENCH_RECORDS may put the record outside the checkout (trial runs).
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"wrote {shown} and {detail.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
