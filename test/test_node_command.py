"""node_command (the node's names, parameter files, overrides and remappings as
`--ros-args`) and `rgbt-track node`, which runs the node with it. No ROS needed, except the
check that rcl reads the generated `-p` values back with their types (skipped without rclpy,
required with RGBT_REQUIRE_ROS=1)."""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from rgbt_tracking_ros import node_command as nc
from rgbt_tracking_ros.cli import main

ROOT = Path(__file__).resolve().parents[1]
DRONE_YAML = ROOT / "config" / "drone.yaml"
GROUND_YAML = ROOT / "config" / "ground_robot.yaml"


# --------------------------------------------------------------------------------------------
# Names and remappings


def test_names_and_remappings():
    assert nc.normalize_namespace("") == "" and nc.normalize_namespace("/") == ""
    assert nc.normalize_namespace("robot1/") == "/robot1"
    assert nc.normalize_namespace("/fleet/robot_1") == "/fleet/robot_1"
    with pytest.raises(ValueError, match="'1robot' is not a valid name token"):
        nc.normalize_namespace("/fleet/1robot")
    with pytest.raises(ValueError, match="no '/'"):
        nc.check_node_name("a/b")
    assert nc.parse_remappings("a:=/b  c/d:=~/e") == [("a", "/b"), ("c/d", "~/e")]
    with pytest.raises(ValueError, match="expected NAME:=VALUE"):
        nc.parse_remappings(["a=b"])
    with pytest.raises(ValueError, match="__node"):
        nc.parse_remappings(["__node:=x"])
    with pytest.raises(ValueError, match="not a valid topic name"):
        nc.parse_remappings(["a:=b c"])


@pytest.mark.parametrize("topic, namespace, resolved", [
    ("~/annotated_image", "", "/rgbt_tracker/annotated_image"),
    ("~/annotated_image", "/robot1", "/robot1/rgbt_tracker/annotated_image"),
    ("front/rgb/image_raw", "robot1", "/robot1/front/rgb/image_raw"),
    ("front/rgb/image_raw", "", "/front/rgb/image_raw"),
    ("/abs/topic", "/robot1", "/abs/topic"),
])
def test_resolve_topic(topic, namespace, resolved):
    assert nc.resolve_topic(topic, namespace, "rgbt_tracker") == resolved



# --------------------------------------------------------------------------------------------
# Node settings


def test_node_arguments_in_order_platform_file_then_overrides():
    settings = nc.node_settings(
        platform="ground_robot", params_files=[DRONE_YAML], namespace="robot1",
        node_name="tracker2", rgb_topic="/cam/rgb", use_sim_time=True, log_level="DEBUG",
        parameters=[("initial_box", "[1,2,3,4]"), ("target_id", "7")],
        remappings=[("tracked_object", "/target")],
    )
    assert settings.ros_arguments() == [
        "--ros-args", "-r", "__ns:=/robot1", "-r", "__node:=tracker2",
        "--params-file", str(GROUND_YAML), "--params-file", str(DRONE_YAML),
        "-p", "rgb_topic:=/cam/rgb", "-p", "use_sim_time:=true",
        "-p", "initial_box:=[1.0, 2.0, 3.0, 4.0]", "-p", "target_id:='7'",
        "-r", "tracked_object:=/target", "--log-level", "debug",
    ]
    assert settings.ros_arguments(with_names=False) == ["--ros-args", *settings.ros_arguments()[5:]]
    assert settings.use_sim_time
    assert settings.topic("annotated_image") == "/robot1/annotated_image"


def test_node_settings_refuse_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="parameter file not found"):
        nc.node_settings(params_files=[tmp_path / "missing.yaml"])
    with pytest.raises(ValueError, match="log level 'loud'"):
        nc.node_settings(log_level="loud")
    with pytest.raises(ValueError, match="empty array"):
        nc.node_settings(parameters=[("homography", "[]")])
    assert nc.node_settings().ros_arguments() == ["--ros-args", "-r", "__node:=rgbt_tracker"]
    assert nc.node_settings().ros_arguments(with_names=False) == []



# --------------------------------------------------------------------------------------------
# `rgbt-track node`


def _print_args(capsys, argv: list[str]) -> list[str]:
    assert main(["node", *argv, "--print-args"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return shlex.split(out[0])


def test_node_print_args_exact(capsys):
    assert _print_args(capsys, ["--platform", "drone"]) == [
        "--ros-args", "-r", "__node:=rgbt_tracker", "--params-file", str(DRONE_YAML)]
    assert _print_args(capsys, [
        "--platform", "ground_robot", "--params", str(DRONE_YAML), "--namespace", "robot1",
        "--name", "tracker", "--rgb-topic", "/cam/rgb", "--thermal-topic", "/cam/ir",
        "-p", "model:=ainet_256", "-p", "slop:=0", "-p", "target_id:=1",
        "--param", "initial_box:=[100,80,40,60]", "-r", "tracked_object:=/target",
        "--use-sim-time", "--log-level", "debug",
    ]) == [
        "--ros-args", "-r", "__ns:=/robot1", "-r", "__node:=tracker",
        "--params-file", str(GROUND_YAML), "--params-file", str(DRONE_YAML),
        "-p", "rgb_topic:=/cam/rgb", "-p", "thermal_topic:=/cam/ir", "-p", "use_sim_time:=true",
        "-p", "model:=ainet_256", "-p", "slop:=0.0", "-p", "target_id:='1'",
        "-p", "initial_box:=[100.0, 80.0, 40.0, 60.0]", "-r", "tracked_object:=/target",
        "--log-level", "debug"]


@pytest.mark.parametrize("argv, message", [
    (["-p", "slopp:=0.01"], "did you mean 'slop'"),
    (["-p", "slop=0.01"], "expected NAME:=VALUE"),
    (["-p", "initial_box:=[]"], "empty array"),
    (["--params", "missing.yaml"], "parameter file not found"),
    (["--namespace", "9lives"], "not a valid name token"),
])
def test_node_cli_errors(capsys, argv, message):
    assert main(["node", "--platform", "drone", *argv, "--print-args"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "rgbt-track node: error" in captured.err


def test_node_cli_runs_the_node_with_the_printed_argv(capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("rgbt_tracking_ros.ros.node")
    fake.main = lambda argv=None: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "rgbt_tracking_ros.ros.node", fake)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "rclpy" else real_find_spec(name, *a))
    argv = ["node", "--platform", "drone", "--namespace", "d1", "-p", "half:=false"]
    assert main(argv) == 0
    assert calls == [_print_args(capsys, argv[1:])]


def test_node_cli_without_rclpy_says_how_to_get_ros(capsys, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "rclpy" else real_find_spec(name, *a))
    assert main(["node", "--platform", "drone"]) == 2
    err = capsys.readouterr().err
    assert "rclpy cannot be imported" in err and "make ros" in err and "/opt/ros" in err



def test_node_options_are_documented():
    doc = (ROOT / "docs" / "launch.md").read_text()
    for option in ("--platform", "--params", "--namespace", "--name", "--rgb-topic",
                   "--thermal-topic", "-p", "--print-args"):
        assert f"`{option}" in doc, option


# --------------------------------------------------------------------------------------------
# rcl reads the generated values back with their types (needs rclpy)

_RCL_PROBE = textwrap.dedent("""
    import json, sys
    import rclpy
    from rclpy.node import Node
    rclpy.init(args=sys.argv[1:])
    node = Node("rgbt_tracker", automatically_declare_parameters_from_overrides=True)
    print(json.dumps({"node": node.get_fully_qualified_name(), "params": {
        name: [p.value, p.type_.name] for name, p in node._parameters.items()}}))
    node.destroy_node()
    rclpy.shutdown()
""")


def rcl_probe(argv: list[str]) -> dict:
    """Parameters and name of a node started with argv, in a fresh interpreter; skips (or fails
    with RGBT_REQUIRE_ROS=1) when rclpy is not usable."""
    result = subprocess.run([sys.executable, "-c", _RCL_PROBE, *argv], capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        if "ModuleNotFoundError: No module named 'rclpy'" in result.stderr and \
                os.environ.get("RGBT_REQUIRE_ROS") != "1":
            pytest.skip("rclpy is not installed (make ros)")
        pytest.fail(f"rcl refused {argv}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_rcl_reads_the_overrides_with_their_types():
    settings = nc.node_settings(namespace="n1", node_name="renamed", parameters=[
        ("slop", "0"), ("target_id", "1"), ("initial_box", "[10, 20, 30, 40]"),
        ("model", "/data/my model.yaml"), ("device", "cuda:0"), ("detection_class", ""),
        ("click_topic", "~/annotated_image_mouse_left"), ("half", "true"),
        ("queue_size", "4"), ("thermal_offset", "-1e-05")])
    probe = rcl_probe(settings.ros_arguments())
    assert probe["node"] == "/n1/renamed"
    expected = {
        "slop": [0.0, "DOUBLE"], "target_id": ["1", "STRING"],
        "initial_box": [[10.0, 20.0, 30.0, 40.0], "DOUBLE_ARRAY"],
        "model": ["/data/my model.yaml", "STRING"], "device": ["cuda:0", "STRING"],
        "detection_class": ["", "STRING"],
        "click_topic": ["~/annotated_image_mouse_left", "STRING"], "half": [True, "BOOL"],
        "queue_size": [4, "INTEGER"], "thermal_offset": [-1e-05, "DOUBLE"]}
    assert {k: probe["params"][k] for k in expected} == expected

