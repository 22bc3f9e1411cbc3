"""What a benchmark figure depends on besides the code: machine, versions, threads."""
from __future__ import annotations

import importlib.util
import os
import platform
from pathlib import Path

import numpy as np
import torch

from rgbt_tracking_ros import __version__
from rgbt_tracking_ros.models.selective_scan import active_backend, load_mamba_scan, load_triton_scan


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it, else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} logical cores)"


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(__import__(module), "__version__", "installed")


def describe(devices: list[torch.device]) -> dict[str, object]:
    """Everything needed to reproduce or compare a run."""
    return {
        "rgbt_tracking_ros": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        # torch: cudnn.version() is unannotated
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,  # type: ignore[no-untyped-call]
        "triton": _version("triton") if load_triton_scan() is not None else None,
        "mamba_ssm": "importable" if load_mamba_scan() is not None else None,
        "onnxruntime": _version("onnxruntime"),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "devices": {str(d): device_name(d) for d in devices},
        "scan_backend": {str(d): active_backend(d) for d in devices},
    }
