"""`rgbt-track`: one command line with a subcommand per job."""
from __future__ import annotations

import argparse
import importlib.util
import logging
import platform
import sys

from . import __version__


def _module_version(name: str) -> str:
    if importlib.util.find_spec(name) is None:
        return "not installed"
    module = __import__(name)
    return getattr(module, "__version__", "installed")


def info(_: argparse.Namespace) -> int:
    """Versions, devices and the active scan implementation: the first thing to paste in an issue."""
    import torch

    from .models import available_models
    from .models.selective_scan import active_backend, load_mamba_scan

    rows = [
        ("rgbt_tracking_ros", __version__),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("numpy", _module_version("numpy")),
        ("opencv", _module_version("cv2")),
        ("mamba_ssm", "importable" if load_mamba_scan() is not None else "not available"),
        ("rclpy", "installed" if importlib.util.find_spec("rclpy") else "not installed"),
        ("cuda", torch.version.cuda or "none (CPU build)"),
        ("scan on cpu", active_backend("cpu")),
    ]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            rows.append((f"cuda:{index}", torch.cuda.get_device_name(index)))
        rows.append(("scan on cuda", active_backend("cuda")))
    else:
        rows.append(("gpu", "none visible"))
    rows.append(("models", ", ".join(available_models())))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rgbt-track", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="print versions, devices and the scan backend").set_defaults(func=info)
    from .bag_cli import add_bag_parser
    from .data_cli import add_data_parser
    from .benchmark.command import add_bench_parser
    from .demo import add_demo_parser
    from .evaluate_cli import add_evaluate_parsers
    from .export import add_export_parser
    from .node_cli import add_node_parser
    from .synth_cli import add_synth_parser
    from .train_cli import add_train_parser

    add_demo_parser(commands)
    add_evaluate_parsers(commands)
    add_node_parser(commands)
    add_bag_parser(commands)
    add_bench_parser(commands)
    add_export_parser(commands)
    add_synth_parser(commands)
    add_data_parser(commands)
    add_train_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as error:
        print(f"rgbt-track {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
