"""Everything the launch files and ``rgbt-track node`` decide, as plain tested Python.

The launch files in ``launch/`` only read their launch arguments as strings and hand them to
:func:`plan_tracker_launch` / :func:`plan_bag_replay`, which return the actions to create (a
``launch_ros.actions.Node`` or a ``launch.actions.ExecuteProcess``, with their keyword
arguments). ``rgbt-track node`` builds the same :class:`NodeSettings` from its command line.
Both therefore start the node with the same parameter files, overrides, names and remappings,
and all of it is unit-tested without ``launch`` (which cannot be installed here).

This module imports neither ``launch``, ``launch_ros``, rclpy, numpy nor torch: a launch file
that imports it stays fast on a robot, and ``rgbt-track node --print-args`` works anywhere.

Parameter overrides are passed to the node as ``--ros-args -p name:=value`` with values
formatted for rcl's YAML parser (:func:`format_parameter_value`), never through
``launch_ros``' ``parameters=[{...}]``, which re-parses strings as YAML (``target_id: "1"``
would become an integer). Later sources win: the platform file, then ``params_file``, then the
named launch arguments (topics, model, ...), then ``parameters``.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .package_files import PACKAGE, find_package_file
from .runtime.parameters import SPECS as _SPECS

# Installed by CMakeLists.txt to lib/rgbt_tracking_ros (from scripts/rgbt_tracker_node).
EXECUTABLE = "rgbt_tracker_node"
DEFAULT_NODE_NAME = "rgbt_tracker"
CORE_LAUNCH_FILE = "rgbt_tracker.launch.py"
RVIZ_CONFIG = "rgbt_tracking.rviz"
# The annotated image as the node names it (relative: /<namespace>/annotated_image, like its
# other outputs) and as config/rgbt_tracking.rviz subscribes to it (no namespace).
ANNOTATED_IMAGE_TOPIC = "annotated_image"
RVIZ_ANNOTATED_IMAGE_TOPIC = "/annotated_image"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
# /clock rate of `ros2 bag play --clock` (its default is 40 Hz): 10 ms steps for the node's
# camera timeout and latency figures under use_sim_time.
BAG_CLOCK_HZ = 100.0


# --------------------------------------------------------------------------------------------
# Platforms


@dataclass(frozen=True)
class Platform:
    """A supported robot: its cameras and the topics config/<name>.yaml subscribes to."""

    name: str
    summary: str
    rgb_hz: float
    thermal_hz: float
    rgb_size: tuple[int, int]  # width, height
    thermal_size: tuple[int, int]
    rgb_topic: str  # relative: a namespace applies to them
    thermal_topic: str


PLATFORMS: dict[str, Platform] = {
    "drone": Platform(
        "drone",
        "gimbal with a 30 Hz RGB camera and a 30 Hz radiometric 640x512 thermal core, "
        "Jetson-class GPU; small, fast targets seen from above",
        rgb_hz=30.0, thermal_hz=30.0, rgb_size=(1920, 1080), thermal_size=(640, 512),
        rgb_topic="gimbal/rgb/image_raw", thermal_topic="gimbal/thermal/image_raw",
    ),
    "ground_robot": Platform(
        "ground_robot",
        "front-facing 30 Hz 1280x720 RGB camera beside a cheap 9 Hz radiometric thermal "
        "core (160x120, centikelvin counts), desktop GPU or CPU; people at 2-20 m",
        rgb_hz=30.0, thermal_hz=9.0, rgb_size=(1280, 720), thermal_size=(160, 120),
        rgb_topic="front/rgb/image_raw", thermal_topic="front/thermal/image_raw",
    ),
}


def check_platform(platform: str) -> Platform:
    try:
        return PLATFORMS[platform]
    except KeyError:
        raise ValueError(
            f"unknown platform {platform!r}: choose one of {', '.join(sorted(PLATFORMS))}, "
            "or pass your own parameter file"
        ) from None


# --------------------------------------------------------------------------------------------
# Package files (configs, launch files): package_files.py


def platform_params_file(platform: str) -> Path:
    """config/<platform>.yaml of a supported platform."""
    check_platform(platform)
    return find_package_file("config", f"{platform}.yaml")


def rviz_config_file() -> Path:
    return find_package_file("config", RVIZ_CONFIG)


# --------------------------------------------------------------------------------------------
# Node parameters: kinds, parsing from strings, formatting for `--ros-args -p`

# Name -> kind ("string", "bool", "int", "double", "double[]"), from the one parameter schema
# (rgbt_tracking_ros/runtime/parameters.py SPECS, ROS- and torch-free). Ranges and choices are
# the node's business: it reports every bad value at configure.
NODE_PARAMETERS: dict[str, str] = {spec.name: spec.kind for spec in _SPECS}
# Parameters every ROS 2 node has, which may be set too.
STANDARD_PARAMETERS: dict[str, str] = {"use_sim_time": "bool"}

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse_bool(text: str | bool, what: str) -> bool:
    """'true'/'false' (also 1/0, yes/no, on/off, any case) as a bool."""
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{what}: expected true or false, got {text!r}")


def parse_float(text: str | float, what: str, *, minimum: float | None = None,
                exclusive: bool = False) -> float:
    """A finite float, optionally >= minimum (> minimum with exclusive)."""
    try:
        value = float(str(text).strip()) if not isinstance(text, (int, float)) else float(text)
    except ValueError:
        raise ValueError(f"{what}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {text!r}")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        relation = ">" if exclusive else ">="
        raise ValueError(f"{what}: must be {relation} {minimum:g}, got {text!r}")
    return value


def parse_float_list(text: str | Iterable[float], what: str,
                     lengths: Iterable[int] | None = None) -> list[float]:
    """'[1, 2, 3, 4]', '1,2,3,4' or '1 2 3 4' as floats; '' or '[]' as []."""
    if isinstance(text, str):
        body = text.strip()
        if body.startswith("[") != body.endswith("]"):
            raise ValueError(f"{what}: unbalanced brackets in {text!r}")
        body = body.strip("[]").strip()
        items = [item for item in re.split(r"[,\s]+", body) if item] if body else []
    else:
        items = list(text)
    values = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: {item!r} is not a number (in {text!r})") from None
        if not math.isfinite(value):
            raise ValueError(f"{what}: {item!r} is not a finite number (in {text!r})")
        values.append(value)
    allowed = tuple(lengths or ())
    if allowed and len(values) not in allowed:
        counts = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{what}: expected {counts} numbers, got {len(values)} in {text!r}")
    return values


def parse_box(text: str, what: str = "initial_box") -> list[float]:
    """'[x, y, w, h]' in RGB pixels with w, h > 0; '' means no box ([])."""
    box = parse_float_list(text, what, lengths=(0, 4))
    if box and not (box[2] > 0 and box[3] > 0):
        raise ValueError(f"{what}: [x, y, w, h] needs a positive width and height, got {text!r}")
    return box


def parameter_kind(name: str) -> str:
    kind = NODE_PARAMETERS.get(name) or STANDARD_PARAMETERS.get(name)
    if kind is None:
        close = difflib.get_close_matches(name, [*NODE_PARAMETERS, *STANDARD_PARAMETERS], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown node parameter {name!r}{hint}; the node's parameters are: "
                         + ", ".join(NODE_PARAMETERS))
    return kind


def parse_parameter_value(name: str, value: Any) -> Any:
    """A parameter value from a string (or an already typed value) as its declared type.

    Strings stay strings (``target_id:=1`` means the string "1"); numbers for doubles become
    floats, so ``slop:=0`` or ``initial_box:=[10,20,30,40]`` give doubles, not integers.
    """
    kind = parameter_kind(name)
    what = f"parameter {name}"
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"{what}: expected a string, got {value!r}")
        return value
    if kind == "bool":
        return parse_bool(value, what)
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{what}: expected an integer, got {value!r}")
        try:
            return int(value) if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            raise ValueError(f"{what}: expected an integer, got {value!r}") from None
    if kind == "double":
        if isinstance(value, bool):
            raise ValueError(f"{what}: expected a number, got {value!r}")
        return parse_float(value, what)
    return parse_float_list(value, what)


_PLAIN_STRING = re.compile(r"[A-Za-z_/~][A-Za-z0-9_./:~+\-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def format_parameter_value(value: Any) -> str:
    """A typed value as rcl's YAML reads it back with the same type, for ``-p name:=value``.

    Floats keep a '.' or an exponent (``1.0``, ``1e-05``: rcl reads both as doubles), arrays
    are written as doubles, and strings that YAML would read as something else ('1', 'true',
    '', 'a: b') are single-quoted. An empty array cannot be passed (rcl reads ``[]`` as "not
    set"): leave the parameter out to get its default.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be passed as a parameter")
        return repr(value)
    if isinstance(value, str):
        if _PLAIN_STRING.fullmatch(value) and value.lower() not in _YAML_WORDS:
            return value
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("an empty array cannot be passed as a parameter override (rcl "
                             "reads [] as 'not set'): leave the parameter out for its default")
        return "[" + ", ".join(format_parameter_value(float(v)) for v in value) + "]"
    raise ValueError(f"cannot pass {value!r} ({type(value).__name__}) as a parameter")


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    """'name:=value' as (name, value)."""
    name, sep, value = text.partition(":=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"{what}: expected NAME:=VALUE, got {text!r}")
    return name, value


def _split_items(items: str | Iterable[str]) -> list[str]:
    if isinstance(items, str):
        try:
            return shlex.split(items)
        except ValueError as error:
            raise ValueError(f"cannot split {items!r}: {error}") from None
    return list(items)


def parse_parameter_assignments(items: str | Iterable[str]) -> list[tuple[str, Any]]:
    """'name:=value' items (a list, or one space-separated string) as typed (name, value)s."""
    pairs = []
    for item in _split_items(items):
        name, text = parse_assignment(item, "parameter")
        pairs.append((name, parse_parameter_value(name, text)))
    return pairs


# --------------------------------------------------------------------------------------------
# Names and remappings

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOPIC = re.compile(r"~?/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*|~")


def normalize_namespace(namespace: str) -> str:
    """'' for the root namespace, otherwise '/a/b' (a leading '/' is added, a trailing one
    dropped); tokens must be letters, digits and '_' and not start with a digit."""
    text = namespace.strip().strip("/")
    if not text:
        return ""
    for token in text.split("/"):
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"namespace {namespace!r}: {token!r} is not a valid name token "
                             "(letters, digits, '_'; not starting with a digit)")
    return "/" + text


def check_node_name(name: str) -> str:
    name = name.strip()
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"node name {name!r}: use letters, digits and '_', not starting with "
                         "a digit (no '/': set the namespace instead)")
    return name


def check_topic_name(topic: str, what: str) -> str:
    topic = topic.strip()
    if not _TOPIC.fullmatch(topic):
        raise ValueError(f"{what}: {topic!r} is not a valid topic name")
    return topic


def resolve_topic(topic: str, namespace: str, node_name: str) -> str:
    """The absolute name ROS gives ``topic`` for a node: '/x' stays, '~/x' becomes
    '<namespace>/<node>/x' and 'x' becomes '<namespace>/x'."""
    namespace = normalize_namespace(namespace)
    if topic.startswith("/"):
        return topic
    if topic == "~" or topic.startswith("~/"):
        return f"{namespace}/{node_name}{topic[1:]}"
    return f"{namespace}/{topic}"


def parse_remappings(items: str | Iterable[str]) -> list[tuple[str, str]]:
    """'from:=to' items (a list, or one space-separated string) as (from, to) pairs."""
    pairs = []
    for item in _split_items(items):
        source, target = parse_assignment(item, "remapping")
        if source.startswith("__"):
            raise ValueError(f"remapping {item!r}: set the node name and namespace with their "
                             "own options, not with __node/__ns")
        pairs.append((check_topic_name(source, "remapping"),
                      check_topic_name(target, "remapping")))
    return pairs


# --------------------------------------------------------------------------------------------
# The node's command line


@dataclass(frozen=True)
class NodeSettings:
    """How one tracker node is started: names, parameter files, overrides, remappings."""

    node_name: str = DEFAULT_NODE_NAME
    namespace: str = ""
    params_files: tuple[Path, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    log_level: str = ""

    def ros_arguments(self, *, with_names: bool = True) -> list[str]:
        """``--ros-args ...`` for the node; without names when launch_ros sets them itself."""
        args = ["--ros-args"]
        if with_names:
            if self.namespace:
                args += ["-r", f"__ns:={self.namespace}"]
            args += ["-r", f"__node:={self.node_name}"]
        for path in self.params_files:
            args += ["--params-file", str(path)]
        for name, value in self.overrides:
            args += ["-p", f"{name}:={format_parameter_value(value)}"]
        for source, target in self.remappings:
            args += ["-r", f"{source}:={target}"]
        if self.log_level:
            args += ["--log-level", self.log_level]
        return args if len(args) > 1 else []

    @property
    def use_sim_time(self) -> bool:
        values = [value for name, value in self.overrides if name == "use_sim_time"]
        return bool(values[-1]) if values else False

    def topic(self, name: str) -> str:
        """The absolute name of one of the node's topics (e.g. ANNOTATED_IMAGE_TOPIC)."""
        return resolve_topic(name, self.namespace, self.node_name)

    def launch_node_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``launch_ros.actions.Node`` for this node."""
        kwargs: dict[str, Any] = {
            "package": PACKAGE,
            "executable": EXECUTABLE,
            "name": self.node_name,
            "arguments": self.ros_arguments(with_names=False),
            "output": "screen",
            "emulate_tty": True,
        }
        if self.namespace:
            kwargs["namespace"] = self.namespace
        return kwargs


def node_settings(
    *,
    platform: str | None = None,
    params_files: Iterable[str | os.PathLike] = (),
    namespace: str = "",
    node_name: str = DEFAULT_NODE_NAME,
    rgb_topic: str = "",
    thermal_topic: str = "",
    use_sim_time: bool = False,
    log_level: str = "",
    parameters: Iterable[tuple[str, Any]] = (),
    remappings: Iterable[tuple[str, str]] = (),
) -> NodeSettings:
    """Checked settings: the platform's file first, then ``params_files`` (each overriding the
    one before), then the topic overrides, use_sim_time and ``parameters`` (last wins)."""
    files: list[Path] = []
    if platform:
        files.append(platform_params_file(platform))
    for entry in params_files:
        path = Path(entry).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"parameter file not found: {path}")
        files.append(path.resolve())
    overrides: list[tuple[str, Any]] = []
    if rgb_topic:
        overrides.append(("rgb_topic", check_topic_name(rgb_topic, "rgb_topic")))
    if thermal_topic:
        overrides.append(("thermal_topic", check_topic_name(thermal_topic, "thermal_topic")))
    if use_sim_time:
        overrides.append(("use_sim_time", True))
    for name, value in parameters:
        typed = parse_parameter_value(name, value)
        format_parameter_value(typed)  # refuses what cannot be passed (empty arrays) now
        overrides.append((name, typed))
    level = log_level.strip().lower()
    if level and level not in LOG_LEVELS:
        raise ValueError(f"log level {log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    return NodeSettings(
        node_name=check_node_name(node_name),
        namespace=normalize_namespace(namespace),
        params_files=tuple(files),
        overrides=tuple(overrides),
        remappings=tuple(remappings),
        log_level=level,
    )


def rviz_command(settings: NodeSettings, config: str | os.PathLike | None = None) -> list[str]:
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


# --------------------------------------------------------------------------------------------
# Bag replay


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
    bag: str | os.PathLike,
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
# Launch arguments and plans


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument; ``default`` None makes it required."""

    name: str
    default: str | None
    description: str
    choices: tuple[str, ...] = ()

    def declare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``launch.actions.DeclareLaunchArgument``."""
        kwargs: dict[str, Any] = {"name": self.name, "description": self.description}
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


class LaunchAction(NamedTuple):
    """An action for a launch file to create: kind 'node' is ``launch_ros.actions.Node``,
    'process' is ``launch.actions.ExecuteProcess``; kwargs are their keyword arguments."""

    kind: str
    kwargs: dict[str, Any]


def _value(values: Mapping[str, str], name: str, arguments: Iterable[LaunchArgument]) -> str:
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

    parameters: list[tuple[str, Any]] = []
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
    platform = get("platform")
    if platform:
        check_platform(platform)
    return node_settings(
        platform=platform or None,
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


def plan_tracker_launch(values: Mapping[str, str]) -> list[LaunchAction]:
    """The node, and RViz when asked, for rgbt_tracker.launch.py."""
    settings = node_settings_from_launch(values)
    actions = [LaunchAction("node", settings.launch_node_kwargs())]
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
        topics=_split_items(get("bag_topics")),
    )
    return [LaunchAction("process", {"cmd": command, "name": "ros2_bag_play",
                                     "output": "screen"})]

