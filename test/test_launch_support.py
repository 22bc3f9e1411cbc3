"""launch_support (what the launch files and `rgbt-track node` decide), the launch files
themselves (static checks, then run against stand-ins of `launch`/`launch_ros`, which are not
installable here) and `rgbt-track node --print-args`. No ROS needed, except the one check
that rcl reads the generated `-p` values back with their types (skipped without rclpy)."""
from __future__ import annotations

import ast
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

from rgbt_tracking_ros import launch_support as ls
from rgbt_tracking_ros import package_files
from rgbt_tracking_ros.cli import main

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_DIR = ROOT / "launch"
LAUNCH_FILES = {name: LAUNCH_DIR / f"{name}.launch.py" for name in ls.LAUNCH_FILES}
DRONE_YAML = ROOT / "config" / "drone.yaml"
GROUND_YAML = ROOT / "config" / "ground_robot.yaml"


# --------------------------------------------------------------------------------------------
# Finding config files in a checkout and in installs


def _fake_install(prefix: Path, *, index_marker: bool, text: str = "fake: 1\n") -> Path:
    share = prefix / "share" / "rgbt_tracking_ros"
    (share / "config").mkdir(parents=True)
    (share / "config" / "drone.yaml").write_text(text)
    if index_marker:
        marker = prefix / "share" / "ament_index" / "resource_index" / "packages"
        marker.mkdir(parents=True)
        (marker / "rgbt_tracking_ros").write_text("")
    return share / "config" / "drone.yaml"


@pytest.fixture
def no_checkout(monkeypatch, tmp_path):
    """As installed: no source tree beside the module, no prefix but the ones a test sets."""
    monkeypatch.setattr(package_files, "SOURCE_ROOT", tmp_path / "not_a_checkout")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "empty_prefix"))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)


def test_configs_are_found_in_the_source_tree_first(monkeypatch, tmp_path):
    installed = _fake_install(tmp_path / "install", index_marker=True)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "install"))
    assert ls.platform_params_file("drone") == ROOT / "config" / "drone.yaml"
    assert ls.platform_params_file("ground_robot") == ROOT / "config" / "ground_robot.yaml"
    assert ls.rviz_config_file() == ROOT / "config" / "rgbt_tracking.rviz"
    assert package_files.share_dirs()[:2] == [ROOT, installed.parents[1]]


@pytest.mark.parametrize("index_marker", [True, False], ids=["ament-index", "prefix-only"])
def test_configs_are_found_under_ament_prefix_path(no_checkout, monkeypatch, tmp_path,
                                                   index_marker):
    empty = tmp_path / "other_prefix"
    empty.mkdir()
    path = _fake_install(tmp_path / "install", index_marker=index_marker)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(empty), str(tmp_path / "install")]))
    assert ls.platform_params_file("drone") == path


def test_configs_are_found_under_sys_prefix(no_checkout, monkeypatch, tmp_path):
    path = _fake_install(tmp_path / "venv", index_marker=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    assert ls.platform_params_file("drone") == path


def test_a_missing_config_names_where_it_looked(no_checkout, monkeypatch, tmp_path):
    _fake_install(tmp_path / "install", index_marker=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "install"))
    with pytest.raises(FileNotFoundError, match=r"ground_robot\.yaml not found.*install"):
        ls.platform_params_file("ground_robot")


def test_an_unknown_platform_lists_the_known_ones():
    with pytest.raises(ValueError, match="drone, ground_robot"):
        ls.platform_params_file("boat")


# --------------------------------------------------------------------------------------------
# Typed values from launch-argument strings


@pytest.mark.parametrize("text, value", [("true", True), ("False", False), (" 1 ", True),
                                         ("0", False), ("yes", True), ("off", False)])
def test_parse_bool(text, value):
    assert ls.parse_bool(text, "rviz") is value


def test_parse_bool_refuses_other_words():
    with pytest.raises(ValueError, match=r"rviz: expected true or false, got 'maybe'"):
        ls.parse_bool("maybe", "rviz")


@pytest.mark.parametrize("text, values", [
    ("[1, 2, 3, 4]", [1.0, 2.0, 3.0, 4.0]),
    ("1,2.5,3,4", [1.0, 2.5, 3.0, 4.0]),
    ("10 20 30 40", [10.0, 20.0, 30.0, 40.0]),
    ("", []),
    ("[]", []),
])
def test_parse_float_list(text, values):
    assert ls.parse_float_list(text, "box") == values


@pytest.mark.parametrize("text, message", [
    ("[1, 2, 3", "unbalanced brackets"),
    ("[1, two, 3, 4]", "'two' is not a number"),
    ("[1, nan, 3, 4]", "not a finite number"),
    ("[1, 2, 3]", "expected 0 or 4 numbers, got 3"),
    ("[1, 2, 0, 4]", "positive width and height"),
    ("[1, 2, 3, -4]", "positive width and height"),
])
def test_parse_box_errors_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        ls.parse_box(text)


def test_parameter_values_take_the_declared_type():
    assert ls.parse_parameter_value("slop", "0") == 0.0
    assert isinstance(ls.parse_parameter_value("slop", "0"), float)
    assert ls.parse_parameter_value("queue_size", "12") == 12
    assert ls.parse_parameter_value("half", "true") is True
    assert ls.parse_parameter_value("target_id", "1") == "1"  # a string stays a string
    assert ls.parse_parameter_value("initial_box", "[10,20,30,40]") == [10.0, 20.0, 30.0, 40.0]
    assert ls.parse_parameter_value("use_sim_time", "true") is True
    with pytest.raises(ValueError, match="parameter queue_size: expected an integer"):
        ls.parse_parameter_value("queue_size", "1.5")
    with pytest.raises(ValueError, match="parameter slop: expected a number"):
        ls.parse_parameter_value("slop", "fast")
    with pytest.raises(ValueError, match="did you mean 'lost_threshold'"):
        ls.parse_parameter_value("lost_treshold", "0.3")


@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (7, "7"), (0.0, "0.0"), (1e-05, "1e-05"),
    (-0.06, "-0.06"), ([1, 2.5], "[1.0, 2.5]"),
    ("cuda:0", "cuda:0"), ("gimbal/rgb/image_raw", "gimbal/rgb/image_raw"),
    ("~/annotated_image_mouse_left", "~/annotated_image_mouse_left"),
    ("1", "'1'"), ("true", "'true'"), ("", "''"), ("it's", "'it''s'"), ("a: b", "'a: b'"),
    ("/data/AINet ep15.pth", "'/data/AINet ep15.pth'"),
])
def test_format_parameter_value(value, text):
    assert ls.format_parameter_value(value) == text


def test_empty_arrays_and_nan_cannot_be_passed():
    with pytest.raises(ValueError, match="empty array"):
        ls.format_parameter_value([])
    with pytest.raises(ValueError, match="cannot be passed"):
        ls.format_parameter_value(float("nan"))


def test_names_and_remappings():
    assert ls.normalize_namespace("") == "" and ls.normalize_namespace("/") == ""
    assert ls.normalize_namespace("robot1/") == "/robot1"
    assert ls.normalize_namespace("/fleet/robot_1") == "/fleet/robot_1"
    with pytest.raises(ValueError, match="'1robot' is not a valid name token"):
        ls.normalize_namespace("/fleet/1robot")
    with pytest.raises(ValueError, match="no '/'"):
        ls.check_node_name("a/b")
    assert ls.parse_remappings("a:=/b  c/d:=~/e") == [("a", "/b"), ("c/d", "~/e")]
    with pytest.raises(ValueError, match="expected NAME:=VALUE"):
        ls.parse_remappings(["a=b"])
    with pytest.raises(ValueError, match="__node"):
        ls.parse_remappings(["__node:=x"])
    with pytest.raises(ValueError, match="not a valid topic name"):
        ls.parse_remappings(["a:=b c"])


@pytest.mark.parametrize("topic, namespace, resolved", [
    ("~/annotated_image", "", "/rgbt_tracker/annotated_image"),
    ("~/annotated_image", "/robot1", "/robot1/rgbt_tracker/annotated_image"),
    ("front/rgb/image_raw", "robot1", "/robot1/front/rgb/image_raw"),
    ("front/rgb/image_raw", "", "/front/rgb/image_raw"),
    ("/abs/topic", "/robot1", "/abs/topic"),
])
def test_resolve_topic(topic, namespace, resolved):
    assert ls.resolve_topic(topic, namespace, "rgbt_tracker") == resolved


# --------------------------------------------------------------------------------------------
# Node settings, RViz and bag commands


def test_node_arguments_in_order_platform_file_then_overrides():
    settings = ls.node_settings(
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
    kwargs = settings.launch_node_kwargs()
    assert kwargs == {
        "package": "rgbt_tracking_ros", "executable": "rgbt_tracker_node", "name": "tracker2",
        "namespace": "/robot1", "arguments": settings.ros_arguments(with_names=False),
        "output": "screen", "emulate_tty": True,
    }
    assert "__node:=tracker2" not in kwargs["arguments"]  # launch_ros sets the names
    assert settings.use_sim_time
    assert settings.topic(ls.ANNOTATED_IMAGE_TOPIC) == "/robot1/annotated_image"


def test_node_settings_refuse_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="parameter file not found"):
        ls.node_settings(params_files=[tmp_path / "missing.yaml"])
    with pytest.raises(ValueError, match="log level 'loud'"):
        ls.node_settings(log_level="loud")
    with pytest.raises(ValueError, match="empty array"):
        ls.node_settings(parameters=[("homography", "[]")])
    assert ls.node_settings().ros_arguments() == ["--ros-args", "-r", "__node:=rgbt_tracker"]
    assert ls.node_settings().ros_arguments(with_names=False) == []


def test_rviz_command_follows_the_node_names_and_sim_time(tmp_path):
    rviz = str(ROOT / "config" / "rgbt_tracking.rviz")
    assert ls.rviz_command(ls.node_settings()) == ["rviz2", "-d", rviz]
    # The outputs are per namespace, so another node name alone needs no remapping.
    assert ls.rviz_command(ls.node_settings(node_name="other")) == ["rviz2", "-d", rviz]
    settings = ls.node_settings(namespace="d1", use_sim_time=True)
    assert ls.rviz_command(settings) == [
        "rviz2", "-d", rviz, "--ros-args",
        "-r", "/annotated_image:=/d1/annotated_image",
        "-p", "use_sim_time:=true",
    ]
    with pytest.raises(FileNotFoundError, match="RViz config not found"):
        ls.rviz_command(settings, tmp_path / "nope.rviz")


def _bag(tmp_path: Path, storage: str | None = "mcap") -> Path:
    bag = tmp_path / "flight"
    bag.mkdir(parents=True)
    info = {"rosbag2_bagfile_information": {"version": 5}}
    if storage:
        info["rosbag2_bagfile_information"]["storage_identifier"] = storage
    (bag / "metadata.yaml").write_text(json.dumps(info))  # JSON is YAML
    return bag


def test_bag_play_command(tmp_path):
    bag = _bag(tmp_path)
    assert ls.bag_play_command(bag) == [
        "ros2", "bag", "play", str(bag), "--clock=100", "--rate=1", "--storage=mcap"]
    assert ls.bag_play_command(bag, rate=0.5, loop=True, delay=2.5,
                               topics=["/a/rgb", "/a/thermal"]) == [
        "ros2", "bag", "play", str(bag), "--clock=100", "--rate=0.5", "--loop", "--delay=2.5",
        "--storage=mcap", "--topics", "/a/rgb", "/a/thermal"]
    single = tmp_path / "run.db3"
    single.write_bytes(b"")
    assert ls.bag_play_command(single)[-1] == "--storage=sqlite3"
    assert not any(a.startswith("--storage") for a in ls.bag_play_command(_bag(tmp_path / "x", None)))


def test_bag_play_command_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="bag not found"):
        ls.bag_play_command(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no metadata.yaml"):
        ls.bag_play_command(tmp_path)
    with pytest.raises(ValueError, match="rate must be > 0"):
        ls.bag_play_command(_bag(tmp_path), rate=0.0)


# --------------------------------------------------------------------------------------------
# Launch plans from launch-argument strings


def _defaults(launch_file: str) -> dict[str, str]:
    return {a.name: a.default for a in ls.launch_arguments(launch_file) if a.default is not None}


def test_core_plan_with_defaults_is_one_node_without_parameter_files():
    actions = ls.plan_tracker_launch(_defaults("rgbt_tracker"))
    assert actions == [ls.LaunchAction("node", {
        "package": "rgbt_tracking_ros", "executable": "rgbt_tracker_node",
        "name": "rgbt_tracker", "arguments": ["--ros-args", "--log-level", "info"],
        "output": "screen", "emulate_tty": True})]


def test_core_plan_translates_every_argument(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("/**:\n  ros__parameters:\n    slop: 0.02\n")
    values = {**_defaults("rgbt_tracker"), "platform": "drone", "params_file": str(extra),
              "namespace": "drone1", "node_name": "tracker", "rgb_topic": "/g/rgb",
              "thermal_topic": "/g/ir", "model": "ainet_256", "checkpoint": "/w/AINet.pth.tar",
              "device": "cpu", "initial_box": "[10, 20, 30, 40]", "autostart": "False",
              "parameters": "lost_threshold:=0.3 queue_size:=4", "remappings": "detections:=/d",
              "use_sim_time": "true", "log_level": "warn", "rviz": "true"}
    node, rviz = ls.plan_tracker_launch(values)
    assert node.kind == "node" and node.kwargs["namespace"] == "/drone1"
    assert node.kwargs["name"] == "tracker"
    assert node.kwargs["arguments"] == [
        "--ros-args", "--params-file", str(DRONE_YAML), "--params-file", str(extra.resolve()),
        "-p", "rgb_topic:=/g/rgb", "-p", "thermal_topic:=/g/ir", "-p", "use_sim_time:=true",
        "-p", "model:=ainet_256", "-p", "checkpoint:=/w/AINet.pth.tar", "-p", "device:=cpu",
        "-p", "initial_box:=[10.0, 20.0, 30.0, 40.0]", "-p", "autostart:=false",
        "-p", "lost_threshold:=0.3", "-p", "queue_size:=4",
        "-r", "detections:=/d", "--log-level", "warn"]
    assert rviz == ls.LaunchAction("process", {"cmd": [
        "rviz2", "-d", str(ROOT / "config" / "rgbt_tracking.rviz"), "--ros-args",
        "-r", "/annotated_image:=/drone1/annotated_image",
        "-p", "use_sim_time:=true"], "name": "rviz2", "output": "screen"})


@pytest.mark.parametrize("name, text, message", [
    ("rviz", "ja", "launch argument rviz: expected true or false"),
    ("use_sim_time", "2", "launch argument use_sim_time: expected true or false"),
    ("initial_box", "[1, 2, 3]", "launch argument initial_box: expected 0 or 4 numbers"),
    ("platform", "boat", "unknown platform 'boat'"),
    ("namespace", "a b", "not a valid name token"),
    ("parameters", "slop=0.1", "expected NAME:=VALUE"),
    ("parameters", "half:=maybe", "parameter half: expected true or false"),
])
def test_core_plan_errors_name_the_argument(name, text, message):
    with pytest.raises(ValueError, match=message):
        ls.plan_tracker_launch({**_defaults("rgbt_tracker"), name: text})


def test_replay_plan(tmp_path):
    bag = _bag(tmp_path, "sqlite3")
    values = {**_defaults("replay"), "bag": str(bag), "rate": "2", "loop": "true",
              "bag_topics": "/front/rgb/image_raw /front/thermal/image_raw"}
    assert ls.plan_bag_replay(values) == [ls.LaunchAction("process", {"cmd": [
        "ros2", "bag", "play", str(bag), "--clock=100", "--rate=2", "--loop", "--delay=3",
        "--storage=sqlite3", "--topics", "/front/rgb/image_raw", "/front/thermal/image_raw"],
        "name": "ros2_bag_play", "output": "screen"})]
    with pytest.raises(ValueError, match="launch argument rate: must be > 0"):
        ls.plan_bag_replay({**values, "rate": "0"})
    with pytest.raises(ValueError, match="launch argument 'bag' is required"):
        ls.plan_bag_replay({k: v for k, v in values.items() if k != "bag"})


def test_launch_argument_sets():
    core = {a.name for a in ls.launch_arguments("rgbt_tracker")}
    for name in ls.LAUNCH_FILES:
        arguments = ls.launch_arguments(name)
        names = [a.name for a in arguments]
        assert len(names) == len(set(names)), name
        assert all(a.description.strip() for a in arguments), name
        assert all(not a.choices or a.default in a.choices for a in arguments), name
    assert {a.name for a in ls.launch_arguments("drone")} == core - {"platform"}
    replay = {a.name: a.default for a in ls.launch_arguments("replay")}
    assert replay["bag"] is None and replay["use_sim_time"] == "true" and replay["rviz"] == "true"
    assert replay["platform"] in ls.PLATFORMS
    with pytest.raises(ValueError, match="unknown launch file"):
        ls.launch_arguments("boat")


def test_every_launch_argument_is_documented():
    doc = (ROOT / "docs" / "launch.md").read_text()
    for name in ls.LAUNCH_FILES:
        assert f"`{name}.launch.py`" in doc
        for argument in ls.launch_arguments(name):
            assert f"`{argument.name}`" in doc, f"{argument.name} of {name}.launch.py"
    for option in ("--platform", "--params", "--namespace", "--name", "--rgb-topic",
                   "--thermal-topic", "-p", "--print-args"):
        assert f"`{option}" in doc, option


def test_node_parameter_table_matches_the_node():
    parameters = pytest.importorskip("rgbt_tracking_ros.ros.parameters")
    assert ls.NODE_PARAMETERS == {spec.name: spec.kind for spec in parameters.SPECS}


def test_annotated_image_topic_matches_the_node():
    """RViz, its remapping and the platform click topics assume the node's topic name."""
    node_py = ROOT / "rgbt_tracking_ros" / "ros" / "node.py"
    if not node_py.is_file():
        pytest.skip("the node is not written yet")
    names = [
        call.args[1].value for call in ast.walk(_tree(node_py))
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
        and call.func.attr in ("create_publisher", "create_lifecycle_publisher")
        and len(call.args) > 1 and isinstance(call.args[1], ast.Constant)
        and str(call.args[1].value).endswith("annotated_image")
    ]
    assert names == [ls.ANNOTATED_IMAGE_TOPIC]


# --------------------------------------------------------------------------------------------
# The launch files: static checks


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


ALLOWED_IMPORTS = {
    "launch": {"LaunchDescription"},
    "launch.actions": {"DeclareLaunchArgument", "ExecuteProcess", "IncludeLaunchDescription",
                       "OpaqueFunction"},
    "launch.substitutions": {"LaunchConfiguration"},
    "launch.launch_description_sources": {"PythonLaunchDescriptionSource"},
    "launch_ros.actions": {"Node"},
    "pathlib": {"Path"},
    "rgbt_tracking_ros": {"launch_support"},
}


@pytest.mark.parametrize("name", ls.LAUNCH_FILES)
def test_launch_file_is_thin_valid_python(name):
    path = LAUNCH_FILES[name]
    compile(path.read_text(), str(path), "exec")
    tree = _tree(path)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pytest.fail(f"{path.name}: plain import {[a.name for a in node.names]}")
        if isinstance(node, ast.ImportFrom):
            allowed = ALLOWED_IMPORTS.get(node.module or "")
            names = {a.name for a in node.names}
            assert allowed is not None and names <= allowed, (path.name, node.module, names)
        # Decisions belong in launch_support: no branches, loops or exception handling here.
        assert not isinstance(node, (ast.If, ast.IfExp, ast.For, ast.While, ast.Try)), (
            f"{path.name}:{node.lineno}: logic belongs in launch_support")


@pytest.mark.parametrize("name", ls.LAUNCH_FILES)
def test_launch_file_only_uses_what_launch_support_has(name):
    used = {node.attr for node in ast.walk(_tree(LAUNCH_FILES[name]))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "launch_support"}
    assert used, "the launch file should delegate to launch_support"
    missing = {attr for attr in used if not hasattr(ls, attr)}
    assert not missing, f"{name}.launch.py uses launch_support.{sorted(missing)}"


def test_launch_directory_holds_exactly_the_known_launch_files():
    assert sorted(p.name for p in LAUNCH_DIR.glob("*.py")) == sorted(
        p.name for p in LAUNCH_FILES.values())


# --------------------------------------------------------------------------------------------
# The launch files, run against stand-ins of launch / launch_ros


class _Entity:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def _stub_modules() -> dict[str, types.ModuleType]:
    """Stand-ins with the real signatures: a wrong keyword fails as it would with launch."""

    class LaunchDescription:
        def __init__(self, initial_entities=None):
            self.entities = list(initial_entities or [])

    class DeclareLaunchArgument:
        def __init__(self, name, *, default_value=None, description=None, choices=None):
            self.name, self.default_value = name, default_value
            self.description, self.choices = description, choices

    class OpaqueFunction:
        def __init__(self, *, function, args=None, kwargs=None):
            self.function = function

    class ExecuteProcess(_Entity):
        def __init__(self, *, cmd, name=None, cwd=None, env=None, additional_env=None,
                     shell=False, output="log", emulate_tty=False, sigterm_timeout=None,
                     sigkill_timeout=None):
            super().__init__(cmd=cmd, name=name, output=output)

    class IncludeLaunchDescription:
        def __init__(self, launch_description_source, *, launch_arguments=None):
            self.source = launch_description_source
            self.launch_arguments = list(launch_arguments or [])

    class PythonLaunchDescriptionSource:
        def __init__(self, launch_file_path):
            self.path = launch_file_path

    class LaunchConfiguration:
        def __init__(self, variable_name, *, default=None):
            self.name = variable_name

        def perform(self, context):
            return context.launch_configurations[self.name]

    class Node(_Entity):
        def __init__(self, *, executable, package=None, name=None, namespace=None,
                     exec_name=None, parameters=None, remappings=None, ros_arguments=None,
                     arguments=None, output="log", emulate_tty=False):
            super().__init__(package=package, executable=executable, name=name,
                             namespace=namespace, arguments=arguments, output=output)

    modules = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.substitutions",
        "launch.launch_description_sources", "launch_ros", "launch_ros.actions")}
    modules["launch"].LaunchDescription = LaunchDescription
    for cls in (DeclareLaunchArgument, OpaqueFunction, ExecuteProcess, IncludeLaunchDescription):
        setattr(modules["launch.actions"], cls.__name__, cls)
    modules["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    modules["launch.launch_description_sources"].PythonLaunchDescriptionSource = (
        PythonLaunchDescriptionSource)
    modules["launch_ros.actions"].Node = Node
    return modules


class _Context:
    def __init__(self, configurations):
        self.launch_configurations = dict(configurations)


def _run_launch(path: Path, cli: dict[str, str], context: _Context | None = None) -> list:
    """What `ros2 launch <file> name:=value ...` would start: the Node/ExecuteProcess stand-ins."""
    spec = importlib.util.spec_from_file_location(f"_launch_{path.stem.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = context or _Context(cli)
    started = []
    pending = list(description.entities)
    while pending:
        entity = pending.pop(0)
        kind = type(entity).__name__
        if kind == "DeclareLaunchArgument":
            if entity.name not in context.launch_configurations:
                if entity.default_value is None:
                    raise RuntimeError(f"required launch argument {entity.name!r} missing")
                context.launch_configurations[entity.name] = entity.default_value
            value = context.launch_configurations[entity.name]
            if entity.choices and value not in entity.choices:
                raise RuntimeError(f"{entity.name}={value!r} not in {entity.choices}")
        elif kind == "IncludeLaunchDescription":
            child = _Context(context.launch_configurations)  # scoped, as launch does
            child.launch_configurations.update(entity.launch_arguments)
            started += _run_launch(Path(entity.source.path), {}, child)
        elif kind == "OpaqueFunction":
            pending[:0] = entity.function(context) or []
        else:
            started.append(entity)
    return started


@pytest.fixture
def fake_launch(monkeypatch):
    # No launch/__pycache__: the Makefile rebuilds the ROS package when launch/* changes.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for name, module in _stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    return _run_launch


def test_core_launch_file_starts_the_node_and_rviz(fake_launch):
    node, rviz = fake_launch(LAUNCH_FILES["rgbt_tracker"], {
        "platform": "ground_robot", "namespace": "robot1", "rviz": "true"})
    assert type(node).__name__ == "Node" and node.kwargs == {
        "package": "rgbt_tracking_ros", "executable": "rgbt_tracker_node",
        "name": "rgbt_tracker", "namespace": "/robot1", "output": "screen",
        "arguments": ["--ros-args", "--params-file", str(GROUND_YAML), "--log-level", "info"]}
    assert type(rviz).__name__ == "ExecuteProcess"
    assert rviz.kwargs["cmd"][:2] == ["rviz2", "-d"]
    assert "/annotated_image:=/robot1/annotated_image" in rviz.kwargs["cmd"]


@pytest.mark.parametrize("platform, params", [("drone", DRONE_YAML), ("ground_robot", GROUND_YAML)])
def test_platform_launch_files_load_their_params_file(fake_launch, platform, params):
    (node,) = fake_launch(LAUNCH_FILES[platform], {"model": "ainet_256", "platform": "x"})
    assert node.kwargs["arguments"] == ["--ros-args", "--params-file", str(params),
                                        "-p", "model:=ainet_256", "--log-level", "info"]
    assert node.kwargs["namespace"] is None


def test_replay_launch_file_plays_the_bag_with_clock_into_the_node(fake_launch, tmp_path):
    bag = _bag(tmp_path)
    node, rviz, play = fake_launch(LAUNCH_FILES["replay"], {"bag": str(bag)})
    assert "-p" in node.kwargs["arguments"] and "use_sim_time:=true" in node.kwargs["arguments"]
    assert str(DRONE_YAML) in node.kwargs["arguments"]
    assert rviz.kwargs["cmd"][-2:] == ["-p", "use_sim_time:=true"]
    assert play.kwargs["cmd"] == ["ros2", "bag", "play", str(bag), "--clock=100", "--rate=1",
                                  "--delay=3", "--storage=mcap"]
    with pytest.raises(RuntimeError, match="required launch argument 'bag'"):
        fake_launch(LAUNCH_FILES["replay"], {})


def test_launch_file_rejects_a_bad_choice(fake_launch):
    with pytest.raises(RuntimeError, match="log_level='verbose'"):
        fake_launch(LAUNCH_FILES["drone"], {"log_level": "verbose"})


# --------------------------------------------------------------------------------------------
# The executable the launch files start, and `rgbt-track node`


def test_node_script_calls_the_node_main():
    script = ROOT / "scripts" / ls.EXECUTABLE
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env python3\n")
    tree = ast.parse(text)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert any(n.module == "rgbt_tracking_ros.ros.node" and [a.name for a in n.names] == ["main"]
               for n in imports)
    assert "sys.exit(main(sys.argv[1:]))" in text


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
    settings = ls.node_settings(namespace="n1", node_name="renamed", parameters=[
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
