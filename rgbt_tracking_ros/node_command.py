"""The tracker node's command line: name, namespace, parameter files, overrides, remappings and
log level, checked and written as ``--ros-args ...``.

The launch plans (launch_support) and `rgbt-track node` (cli/node.py) both build their
:class:`NodeSettings` with :func:`node_settings`, so the node starts with the same parameter
files, overrides, names and remappings either way.

Overrides reach the node as ``--ros-args -p name:=value`` with values formatted for rcl's YAML
parser (parameter_text.format_parameter_value), never through ``launch_ros``'
``parameters=[{...}]``, which re-parses strings as YAML (``target_id: "1"`` would become an
integer). Later sources win: the platform file, then the other parameter files, then the topic
overrides and use_sim_time, then the other parameters.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .parameter_text import (
    ParameterValue,
    format_parameter_value,
    parse_assignment,
    parse_parameter_value,
    split_items,
)
from .platforms import platform_params_file

DEFAULT_NODE_NAME = "rgbt_tracker"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")

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
    """The name without surrounding blanks, or ValueError: a node name is a single token."""
    name = name.strip()
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"node name {name!r}: use letters, digits and '_', not starting with "
                         "a digit (no '/': set the namespace instead)")
    return name


def check_topic_name(topic: str, what: str) -> str:
    """The topic without surrounding blanks, or ValueError naming ``what`` it was for."""
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
    for item in split_items(items):
        source, target = parse_assignment(item, "remapping")
        if source.startswith("__"):
            raise ValueError(f"remapping {item!r}: set the node name and namespace with their "
                             "own options, not with __node/__ns")
        pairs.append((check_topic_name(source, "remapping"),
                      check_topic_name(target, "remapping")))
    return pairs


@dataclass(frozen=True)
class NodeSettings:
    """How one tracker node is started: names, parameter files, overrides, remappings."""

    node_name: str = DEFAULT_NODE_NAME
    namespace: str = ""
    params_files: tuple[Path, ...] = ()
    overrides: tuple[tuple[str, ParameterValue], ...] = ()
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
        """The absolute name of one of the node's topics (e.g. 'annotated_image')."""
        return resolve_topic(name, self.namespace, self.node_name)


def node_settings(
    *,
    platform: str | None = None,
    params_files: Iterable[str | os.PathLike[str]] = (),
    namespace: str = "",
    node_name: str = DEFAULT_NODE_NAME,
    rgb_topic: str = "",
    thermal_topic: str = "",
    use_sim_time: bool = False,
    log_level: str = "",
    parameters: Iterable[tuple[str, object]] = (),
    remappings: Iterable[tuple[str, str]] = (),
) -> NodeSettings:
    """Checked settings: the platform's file first, then ``params_files`` (each overriding the
    one before), then the topic overrides, use_sim_time and ``parameters`` (text or typed
    values; last wins)."""
    files: list[Path] = []
    if platform:
        files.append(platform_params_file(platform))
    for entry in params_files:
        path = Path(entry).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"parameter file not found: {path}")
        files.append(path.resolve())
    overrides: list[tuple[str, ParameterValue]] = []
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
