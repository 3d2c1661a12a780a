"""Launch files: `launch`/`launch_ros` are not installable from PyPI, so we read each XML
launch file ourselves, resolve every `<node pkg exec>` to the installed executable, start
the nodes with their parameters, see them on the ROS graph, check that every `<param>`
(and every key of the node's config/params file) is declared by the node, and stop them
with SIGINT expecting a clean exit."""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from rcl_interfaces.srv import ListParameters

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.xml"))
VAR = re.compile(r"\$\(var ([A-Za-z_][A-Za-z0-9_]*)\)")
EVAL = re.compile(r"^\$\(eval '(.*)'\)$")


def resolve_executable(pkg: str, exe: str) -> Path:
    """Where `ros2 run pkg exe` would find it: lib/<pkg>/ of an install, or the scripts dir."""
    candidates = [Path(sys.prefix) / "lib" / pkg / exe,
                  Path(sysconfig.get_path("scripts")) / exe]
    which = shutil.which(exe)
    if which:
        candidates.append(Path(which))
    for path in candidates:
        if path.is_file() and path.stat().st_mode & 0o111:
            return path
    raise AssertionError(f"executable {pkg}/{exe} not installed (looked in {candidates})")


def parse_launch(path: Path, overrides: dict[str, str]) -> list[dict[str, Any]]:
    root = ET.parse(path).getroot()
    assert root.tag == "launch"
    args = {a.get("name"): a.get("default", "") for a in root.findall("arg")}
    for a in root.findall("arg"):
        assert a.get("description"), f"{path.name}: arg {a.get('name')} has no description"
    unknown = set(overrides) - set(args)
    assert not unknown, f"{path.name} has no args {unknown}"
    args.update(overrides)

    def sub(text: str) -> str:
        text = VAR.sub(lambda m: args[m.group(1)], text)
        expr = EVAL.match(text)  # launch's $(eval 'python expression')
        return str(eval(expr.group(1).replace("\\'", "'"))).lower() if expr else text

    for let in root.findall("let"):
        args[let.get("name")] = sub(let.get("value", ""))
    nodes = []
    for node in root.findall("node"):
        if node.get("if") is not None and sub(node.get("if")) != "true":
            continue
        nodes.append({
            "pkg": node.get("pkg"), "exec": node.get("exec"), "name": node.get("name"),
            "params": {p.get("name"): sub(p.get("value", "")) for p in node.findall("param")},
        })
    return nodes


def test_launch_files_exist_and_take_the_documented_args() -> None:
    assert [p.name for p in LAUNCH_FILES] == ["policy.launch.xml", "robot.launch.xml",
                                              "sim.launch.xml"]
    for path in LAUNCH_FILES:
        args = {a.get("name") for a in ET.parse(path).getroot().findall("arg")}
        assert {"robot", "safety", "dry_run"} <= args, path.name
    policy_args = {a.get("name") for a in ET.parse(LAUNCH_FILES[0]).getroot().findall("arg")}
    assert {"artifact", "sim", "goal"} <= policy_args


def test_policy_launch_requires_a_rehearsal_unless_simulated() -> None:
    for sim, required in (("true", "false"), ("false", "true")):
        nodes = parse_launch(LAUNCH_FILES[0], {"artifact": "/a", "sim": sim})
        runner = next(n for n in nodes if n["exec"] == "policy_runner")
        assert runner["params"]["rehearsal_required"] == required
        assert ("sim_robot" in [n["exec"] for n in nodes]) == (sim == "true")


def list_parameters(probe: Any, node: str) -> set[str]:
    client = probe.node.create_client(ListParameters, f"/{node}/list_parameters")
    try:
        assert client.wait_for_service(timeout_sec=15.0), f"{node}: no list_parameters service"
        future = client.call_async(ListParameters.Request())
        t0 = time.monotonic()
        while not future.done() and time.monotonic() - t0 < 10.0:
            time.sleep(0.02)
        assert future.done(), f"{node}: list_parameters did not answer"
        return set(future.result().result.names)
    finally:
        probe.node.destroy_client(client)


@pytest.fixture(scope="module")
def launch_domain(ros_domain: int, free_domain_fn: Any) -> int:
    """A domain of its own: the session's sim_robot/arm_bridge use the same node names."""
    return free_domain_fn(ros_domain)


@pytest.fixture(scope="module")
def launch_probe(launch_domain: int, ros_probe_class: Any) -> Any:
    p = ros_probe_class(launch_domain, "launch_probe")
    yield p
    p.close()


@pytest.mark.slow
@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_nodes_start_declare_params_and_stop(
        launch_file: Path, launch_domain: int, launch_probe: Any, ros_process: Any,
        tmp_path: Path) -> None:
    probe, ros_domain = launch_probe, launch_domain
    overrides = {"audit_log": str(tmp_path / "audit.jsonl"), "safety": "unattended"}
    if launch_file.name == "policy.launch.xml":  # a hand-built artifact, in simulation
        from policy_artifacts import constant_artifact

        overrides.update(sim="true", artifact=str(constant_artifact(tmp_path / "art", [0.0] * 7)))
    nodes = parse_launch(launch_file, overrides)
    assert nodes
    procs: list[tuple[dict[str, Any], Any]] = []
    try:
        for node in nodes:
            assert node["pkg"] == "robo_agent"
            exe = resolve_executable(node["pkg"], node["exec"])
            cmd = [str(exe), "--ros-args", "-r", f"__node:={node['name']}"]
            for k, v in node["params"].items():
                cmd += ["-p", f"{k}:={v if v != '' else repr('')}"]
            procs.append((node, ros_process(cmd, ros_domain, tmp_path / f"{node['name']}.log")))
        names = {n["name"] for n, _ in procs}
        t0 = time.monotonic()
        while not names <= set(probe.node.get_node_names()):
            for node, proc in procs:
                assert proc.proc.poll() is None, f"{node['name']} exited:\n{proc.output()}"
            assert time.monotonic() - t0 < 30.0, f"{names} not on the graph"
            time.sleep(0.1)
        for node, _proc in procs:
            declared = list_parameters(probe, node["name"])
            missing = set(node["params"]) - declared
            assert not missing, f"{launch_file.name}: {node['exec']} does not declare {missing}"
            params_file = ROOT / "config" / "params" / f"{node['exec']}.yaml"
            keys = set(yaml.safe_load(params_file.read_text())[node["exec"]]["ros__parameters"])
            assert not keys - declared, f"{params_file.name}: undeclared {keys - declared}"
    finally:
        codes = {node["name"]: proc.stop() for node, proc in procs}
    for node, proc in procs:
        assert codes[node["name"]] == 0, f"{node['name']} exit {codes[node['name']]}:\n" \
                                         f"{proc.output()[-3000:]}"
        assert "Traceback" not in proc.output(), proc.output()
