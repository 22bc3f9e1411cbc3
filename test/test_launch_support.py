"""launch_support (what the launch files declare and start: launch arguments, the node's
launch_ros keywords, RViz and `ros2 bag play`) and the launch files themselves (static checks,
then run against stand-ins of `launch`/`launch_ros`, which are not installable here). No ROS
needed. The node's command line itself is tested in test_node_command.py."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import pytest

from rgbt_tracking_ros import launch_support as ls
from rgbt_tracking_ros.node_command import node_settings

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_DIR = ROOT / "launch"
LAUNCH_FILES = {name: LAUNCH_DIR / f"{name}.launch.py" for name in ls.LAUNCH_FILES}
DRONE_YAML = ROOT / "config" / "drone.yaml"
GROUND_YAML = ROOT / "config" / "ground_robot.yaml"


# --------------------------------------------------------------------------------------------
# The node as launch_ros starts it, RViz and bag commands


def test_launch_ros_sets_the_names_and_gets_the_rest_as_arguments():
    settings = node_settings(platform="drone", namespace="robot1", node_name="tracker2",
                             parameters=[("slop", "0")])
    kwargs = ls.launch_node_kwargs(settings)
    assert kwargs == {
        "package": "rgbt_tracking_ros", "executable": "rgbt_tracker_node", "name": "tracker2",
        "namespace": "/robot1", "output": "screen", "emulate_tty": True,
        "arguments": ["--ros-args", "--params-file", str(DRONE_YAML), "-p", "slop:=0.0"],
    }
    assert "namespace" not in ls.launch_node_kwargs(node_settings())


def test_rviz_command_follows_the_node_names_and_sim_time(tmp_path):
    rviz = str(ROOT / "config" / "rgbt_tracking.rviz")
    assert ls.rviz_command(node_settings()) == ["rviz2", "-d", rviz]
    # The outputs are per namespace, so another node name alone needs no remapping.
    assert ls.rviz_command(node_settings(node_name="other")) == ["rviz2", "-d", rviz]
    settings = node_settings(namespace="d1", use_sim_time=True)
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
# The executable the launch files start


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

