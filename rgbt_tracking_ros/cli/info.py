"""`rgbt-track info`: versions and registered models, the first thing to paste in an issue."""
from __future__ import annotations

import argparse
import importlib.util
import platform

from .. import __version__


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
    from ..models import available_models, config_geometry, load_model_config

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

    from ..models.selective_scan import active_backend, load_mamba_scan

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


def add_info_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("info", help="print versions and registered models (--models: devices, scan backend)")
    parser.add_argument("--models", action="store_true",
                        help="also import torch: CUDA, devices, the selective-scan backend, each model's crop geometry")
    parser.set_defaults(func=info)
