"""What the launch files in ``launch/`` declare and start, as plain tested Python.

The launch files only read their launch arguments as strings and hand them to
:func:`plan_tracker_launch` / :func:`plan_bag_replay`, which return the actions to create (a
``launch_ros.actions.Node`` or a ``launch.actions.ExecuteProcess``, with their keyword
arguments). The node's command line comes from node_command, as for ``rgbt-track node``; this
module adds the launch arguments, the RViz command and ``ros2 bag play``. All of it is
unit-tested without ``launch`` (which cannot be installed here).

This module imports neither ``launch``, ``launch_ros``, rclpy, numpy nor torch, so a launch
file that imports it stays fast on a robot (test/test_layout.py).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .node_command import (
    DEFAULT_NODE_NAME,
    LOG_LEVELS,
    NodeSettings,
    check_topic_name,
    node_settings,
    parse_remappings,
)
from .package_files import PACKAGE, find_package_file
from .parameter_text import (
    parse_bool,
    parse_box,
    parse_float,
    parse_parameter_assignments,
    split_items,
)
from .platforms import PLATFORMS

# Installed by CMakeLists.txt to lib/rgbt_tracking_ros (from scripts/rgbt_tracker_node).
EXECUTABLE = "rgbt_tracker_node"
CORE_LAUNCH_FILE = "rgbt_tracker.launch.py"
RVIZ_CONFIG = "rgbt_tracking.rviz"
# The annotated image as the node names it (relative: /<namespace>/annotated_image, like its
# other outputs) and as config/rgbt_tracking.rviz subscribes to it (no namespace).
ANNOTATED_IMAGE_TOPIC = "annotated_image"
RVIZ_ANNOTATED_IMAGE_TOPIC = "/annotated_image"
# /clock rate of `ros2 bag play --clock` (its default is 40 Hz): 10 ms steps for the node's
# camera timeout and latency figures under use_sim_time.
BAG_CLOCK_HZ = 100.0


# --------------------------------------------------------------------------------------------
# Launch arguments


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument; ``default`` None makes it required."""

    name: str
    default: str | None
    description: str
    choices: tuple[str, ...] = ()

    def declare_kwargs(self) -> dict[str, object]:
        """Keyword arguments of ``launch.actions.DeclareLaunchArgument``."""
        kwargs: dict[str, object] = {"name": self.name, "description": self.description}
        if self.default is not None:
            kwargs["default_value"] = self.default
        if self.choices:
            kwargs["choices"] = list(self.choices)
        return kwargs


_KEEP = "'' keeps the parameter file's value"

CORE_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("platform", "", "Platform whose config/<platform>.yaml is loaded first: "
                   "drone or ground_robot; '' loads none (the node's defaults)",
                   choices=("", *PLATFORMS)),
    LaunchArgument("params_file", "", "A parameter file loaded after the platform's (its "
                   "values win); use the /** key so any node name matches"),
    LaunchArgument("namespace", "", "Namespace of the node (e.g. robot1): its outputs "
                   "/<namespace>/{tracked_object,detections,annotated_image} and services, and "
                   "relative input topics (the platform topics included) resolve inside it"),
    LaunchArgument("node_name", DEFAULT_NODE_NAME, "Node name (parameters, logs, lifecycle); "
                   "give several trackers different namespaces, as outputs are per namespace"),
    LaunchArgument("rgb_topic", "", f"RGB image topic; {_KEEP}"),
    LaunchArgument("thermal_topic", "", f"Thermal image topic; {_KEEP}"),
    LaunchArgument("model", "", f"Registered model name or model YAML; {_KEEP}"),
    LaunchArgument("checkpoint", "", f"Weights file; {_KEEP}"),
    LaunchArgument("device", "", f"torch device (cuda:0, cpu); {_KEEP}"),
    LaunchArgument("initial_box", "", "[x, y, w, h] in RGB pixels tracked from the first "
                   f"pair; {_KEEP} (normally none: set_target, a click or a detection)"),
    LaunchArgument("autostart", "", "true: configure and activate at start; false: wait for "
                   f"lifecycle transitions; {_KEEP}"),
    LaunchArgument("parameters", "", "More overrides, 'name:=value name2:=value2', applied "
                   "last"),
    LaunchArgument("remappings", "", "Topic remappings for the node, 'from:=to from2:=to2'"),
    LaunchArgument("use_sim_time", "false", "Use /clock (bag replay, simulation) for the node "
                   "and RViz"),
    LaunchArgument("log_level", "info", "Log level of the node", choices=LOG_LEVELS),
    LaunchArgument("rviz", "false", "Start RViz with config/rgbt_tracking.rviz (the annotated "
                   "image)"),
    LaunchArgument("rviz_config", "", "Another RViz config; '' uses config/rgbt_tracking.rviz"),
)

REPLAY_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("bag", None, "rosbag2 bag to play (folder with metadata.yaml, or a .mcap "
                   "file); required"),
    LaunchArgument("rate", "1.0", "Playback rate (> 0)"),
    LaunchArgument("loop", "false", "Play the bag in a loop (the node resets its pairing when "
                   "the stamps jump back)"),
    LaunchArgument("delay", "3.0", "Seconds to wait before playing, so the node has loaded "
                   "its model before the first frame"),
    LaunchArgument("bag_topics", "", "Only play these topics (space-separated); '' plays all. "
                   "Leave out outputs of an earlier tracker recorded in the bag"),
)

LAUNCH_FILES = ("rgbt_tracker", *PLATFORMS, "replay")


def launch_arguments(launch_file: str) -> list[LaunchArgument]:
    """The arguments a launch file declares: 'rgbt_tracker' (core), a platform name, 'replay'."""
    if launch_file == "rgbt_tracker":
        return list(CORE_ARGUMENTS)
    if launch_file in PLATFORMS:
        platform = PLATFORMS[launch_file]
        topics = {"rgb_topic": platform.rgb_topic, "thermal_topic": platform.thermal_topic}
        arguments = []
        for argument in CORE_ARGUMENTS:
            if argument.name == "platform":
                continue  # fixed by the file
            if argument.name in topics:
                argument = LaunchArgument(
                    argument.name, "", f"{argument.description} "
                    f"({launch_file}.yaml: {topics[argument.name]})")
            arguments.append(argument)
        return arguments
    if launch_file == "replay":
        replay_defaults = {"platform": "drone", "use_sim_time": "true", "rviz": "true"}
        core = [
            LaunchArgument(a.name, replay_defaults.get(a.name, a.default), a.description,
                           a.choices)
            for a in CORE_ARGUMENTS
        ]
        return [*REPLAY_ARGUMENTS, *core]
    raise ValueError(f"unknown launch file {launch_file!r}: one of {', '.join(LAUNCH_FILES)}")


# --------------------------------------------------------------------------------------------
# The commands the launch files run besides the node: RViz and ros2 bag play


def rviz_config_file() -> Path:
    """config/rgbt_tracking.rviz, from the checkout or the install."""
    return find_package_file("config", RVIZ_CONFIG)


def rviz_command(settings: NodeSettings, config: str | os.PathLike[str] | None = None) -> list[str]:
    """``rviz2 -d <config>``, remapping the config's annotated-image topic onto this node's
    and with use_sim_time when the node has it."""
    path = Path(config).expanduser() if config else rviz_config_file()
    if not path.is_file():
        raise FileNotFoundError(f"RViz config not found: {path}")
    command = ["rviz2", "-d", str(path)]
    ros_args = []
    annotated = settings.topic(ANNOTATED_IMAGE_TOPIC)
    if annotated != RVIZ_ANNOTATED_IMAGE_TOPIC:
        ros_args += ["-r", f"{RVIZ_ANNOTATED_IMAGE_TOPIC}:={annotated}"]
    if settings.use_sim_time:
        ros_args += ["-p", "use_sim_time:=true"]
    return command + (["--ros-args", *ros_args] if ros_args else [])


def bag_storage_id(bag: Path) -> str | None:
    """The storage plugin of a rosbag2 bag ('sqlite3', 'mcap'), or None when unknown.

    Humble's ``ros2 bag play`` assumes sqlite3 unless told; Jazzy detects it. Passing it
    explicitly works on both.
    """
    if bag.is_file():
        return {".mcap": "mcap", ".db3": "sqlite3"}.get(bag.suffix)
    metadata = bag / "metadata.yaml"
    if not metadata.is_file():
        return None
    import yaml

    try:
        info = yaml.safe_load(metadata.read_text(encoding="utf-8")) or {}
        storage = info["rosbag2_bagfile_information"]["storage_identifier"]
    except (yaml.YAMLError, KeyError, TypeError, OSError):
        return None
    return storage if isinstance(storage, str) and storage else None


def bag_play_command(
    bag: str | os.PathLike[str],
    *,
    rate: float = 1.0,
    loop: bool = False,
    delay: float = 0.0,
    topics: Iterable[str] = (),
    clock_hz: float = BAG_CLOCK_HZ,
) -> list[str]:
    """``ros2 bag play <bag> --clock=HZ --rate=R [--loop] [--delay=S] [--storage=ID]
    [--topics ...]``: publishes /clock for use_sim_time.

    Options use ``--opt=value``: ``--clock`` takes an optional value, so ``--clock <bag>``
    would read the bag path as a frequency. ``--delay`` is left out when 0 (Humble refuses
    ``--delay=0``).
    """
    path = Path(bag).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise FileNotFoundError(f"{path} is not a rosbag2 bag: it has no metadata.yaml")
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"bag rate must be > 0, got {rate!r}")
    if not (delay >= 0 and math.isfinite(delay)):
        raise ValueError(f"bag delay must be >= 0 s, got {delay!r}")
    command = ["ros2", "bag", "play", str(path), f"--clock={clock_hz:g}", f"--rate={rate:g}"]
    if loop:
        command.append("--loop")
    if delay > 0:
        command.append(f"--delay={delay:g}")
    storage = bag_storage_id(path)
    if storage:
        command.append(f"--storage={storage}")
    topic_list = [check_topic_name(t, "bag topic") for t in topics]
    if topic_list:
        command += ["--topics", *topic_list]  # nargs='+': keep it last
    return command


# --------------------------------------------------------------------------------------------
# Plans: the actions the launch files create


class LaunchAction(NamedTuple):
    """An action for a launch file to create: kind 'node' is ``launch_ros.actions.Node``,
    'process' is ``launch.actions.ExecuteProcess``; kwargs are their keyword arguments."""

    kind: str
    kwargs: dict[str, object]


def _value(values: Mapping[str, str], name: str, arguments: Iterable[LaunchArgument]) -> str:
    """A launch argument's value as given, else its default (plans may get partial values)."""
    if name in values and values[name] is not None:
        return str(values[name]).strip()
    for argument in arguments:
        if argument.name == name:
            if argument.default is None:
                raise ValueError(f"launch argument {name!r} is required")
            return argument.default
    raise KeyError(name)


def node_settings_from_launch(values: Mapping[str, str]) -> NodeSettings:
    """NodeSettings from the core launch arguments (strings, as LaunchConfigurations give)."""

    def get(name: str) -> str:
        return _value(values, name, CORE_ARGUMENTS)

    parameters: list[tuple[str, object]] = []
    for name in ("model", "checkpoint", "device"):
        if get(name):
            parameters.append((name, get(name)))
    if get("initial_box"):
        parameters.append(("initial_box", parse_box(get("initial_box"), "launch argument "
                                                                       "initial_box")))
    if get("autostart"):
        parameters.append(("autostart", parse_bool(get("autostart"), "launch argument "
                                                                     "autostart")))
    parameters += parse_parameter_assignments(get("parameters"))
    return node_settings(
        platform=get("platform") or None,
        params_files=[get("params_file")] if get("params_file") else [],
        namespace=get("namespace"),
        node_name=get("node_name"),
        rgb_topic=get("rgb_topic"),
        thermal_topic=get("thermal_topic"),
        use_sim_time=parse_bool(get("use_sim_time"), "launch argument use_sim_time"),
        log_level=get("log_level"),
        parameters=parameters,
        remappings=parse_remappings(get("remappings")),
    )


def launch_node_kwargs(settings: NodeSettings) -> dict[str, object]:
    """Keyword arguments of ``launch_ros.actions.Node`` for the node: launch_ros sets its name
    and namespace, the rest of its command line goes in ``arguments``."""
    kwargs: dict[str, object] = {
        "package": PACKAGE,
        "executable": EXECUTABLE,
        "name": settings.node_name,
        "arguments": settings.ros_arguments(with_names=False),
        "output": "screen",
        "emulate_tty": True,
    }
    if settings.namespace:
        kwargs["namespace"] = settings.namespace
    return kwargs


def plan_tracker_launch(values: Mapping[str, str]) -> list[LaunchAction]:
    """The node, and RViz when asked, for rgbt_tracker.launch.py."""
    settings = node_settings_from_launch(values)
    actions = [LaunchAction("node", launch_node_kwargs(settings))]
    if parse_bool(_value(values, "rviz", CORE_ARGUMENTS), "launch argument rviz"):
        command = rviz_command(settings, _value(values, "rviz_config", CORE_ARGUMENTS) or None)
        actions.append(LaunchAction("process", {"cmd": command, "name": "rviz2",
                                                "output": "screen"}))
    return actions


def plan_bag_replay(values: Mapping[str, str]) -> list[LaunchAction]:
    """``ros2 bag play ... --clock`` for replay.launch.py (the node and RViz come from the
    core launch file it includes)."""

    def get(name: str) -> str:
        return _value(values, name, REPLAY_ARGUMENTS)

    command = bag_play_command(
        get("bag"),
        rate=parse_float(get("rate"), "launch argument rate", minimum=0.0, exclusive=True),
        loop=parse_bool(get("loop"), "launch argument loop"),
        delay=parse_float(get("delay"), "launch argument delay", minimum=0.0),
        topics=split_items(get("bag_topics")),
    )
    return [LaunchAction("process", {"cmd": command, "name": "ros2_bag_play",
                                     "output": "screen"})]
