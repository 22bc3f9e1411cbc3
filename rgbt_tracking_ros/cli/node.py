"""`rgbt-track node`: run the ROS 2 tracker node in this process, without `launch`.

It starts the same node as ``ros2 launch rgbt_tracking_ros <platform>.launch.py`` with the
same parameter files, built by the same functions (``node_command``): for machines where
``launch`` is not installed (this one: ROS 2 from PyPI) and for quick runs. ``--print-args``
prints the node's ``--ros-args`` command line instead of running it.
"""
from __future__ import annotations

import argparse
import importlib.util
import shlex

from ..node_command import DEFAULT_NODE_NAME, LOG_LEVELS, NodeSettings, node_settings, parse_remappings
from ..parameter_text import parse_assignment
from ..platforms import PLATFORMS
from ..runtime.parameters import SPECS
from .options import ROS_MISSING

# Parameters that already have an option of their own.
_OWN_OPTIONS = {"rgb_topic", "thermal_topic"}


def _schema_options(parser: argparse.ArgumentParser) -> None:
    """One --<name> option per node parameter, from the schema (docs/node.md lists them)."""
    group = parser.add_argument_group(
        "node parameters (from the schema; applied after the parameter files, before -p)")
    for spec in SPECS:
        if spec.name in _OWN_OPTIONS:
            continue
        constraint = f" [{', '.join(spec.choices)}]" if spec.choices else ""
        group.add_argument(f"--{spec.name.replace('_', '-')}", dest=f"param_{spec.name}",
                           metavar=spec.kind.upper(), default=None,
                           help=f"{spec.description}{constraint} (applies {spec.when}; "
                                f"default {spec.default!r})".replace("%", "%%"))


def settings_from_args(args: argparse.Namespace) -> NodeSettings:
    """The node's settings from this command's options (schema options before -p)."""
    options = [(spec.name, value) for spec in SPECS
               if (value := getattr(args, "param_" + spec.name, None)) is not None]
    parameters = [*options, *(parse_assignment(item, "-p") for item in args.param)]
    return node_settings(
        platform=args.platform,
        params_files=args.params,
        namespace=args.namespace,
        node_name=args.name,
        rgb_topic=args.rgb_topic,
        thermal_topic=args.thermal_topic,
        use_sim_time=args.use_sim_time,
        log_level=args.log_level or "",
        parameters=parameters,
        remappings=parse_remappings(args.remap),
    )


def run_node(argv: list[str]) -> int:
    """Import the node only now: `rgbt-track info` and `--print-args` work without ROS."""
    if importlib.util.find_spec("rclpy") is None:
        raise RuntimeError(ROS_MISSING)
    try:
        from ..ros.node import main as node_main
    except ImportError as error:
        raise RuntimeError(f"the ROS node cannot be imported ({error}). {ROS_MISSING}") from error
    return int(node_main(argv) or 0)


def node(args: argparse.Namespace) -> int:
    argv = settings_from_args(args).ros_arguments()
    if args.print_args:
        print(shlex.join(argv))
        return 0
    return run_node(argv)


def add_node_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "node",
        help="run the ROS 2 tracker node with a platform's parameter file (no launch needed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--platform", choices=sorted(PLATFORMS),
                        help="load config/<platform>.yaml first")
    parser.add_argument("--params", action="append", default=[], metavar="FILE",
                        help="a parameter file loaded after the platform's (repeatable; "
                             "later files win)")
    parser.add_argument("--namespace", default="", metavar="NS", help="node namespace")
    parser.add_argument("--name", default=DEFAULT_NODE_NAME, help="node name")
    parser.add_argument("--rgb-topic", default="", metavar="TOPIC",
                        help="RGB image topic (default: the parameter file's)")
    parser.add_argument("--thermal-topic", default="", metavar="TOPIC",
                        help="thermal image topic (default: the parameter file's)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="set a node parameter, applied last (repeatable), e.g. "
                             "-p model:=ainet_256 -p initial_box:=[100,80,40,60]")
    parser.add_argument("-r", "--remap", action="append", default=[], metavar="FROM:=TO",
                        help="remap a topic of the node (repeatable)")
    parser.add_argument("--use-sim-time", action="store_true",
                        help="use /clock (bag replay with ros2 bag play --clock)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="node log level")
    parser.add_argument("--print-args", action="store_true",
                        help="print the node's --ros-args command line and exit")
    _schema_options(parser)
    parser.set_defaults(func=node)
