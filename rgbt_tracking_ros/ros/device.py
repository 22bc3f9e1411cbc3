"""The torch device the node runs on, with the explicit fallback policy of the parameters.

A robot whose GPU driver broke should either keep tracking slowly on the CPU and say so loudly
(``device_fallback: cpu``) or refuse to start (``fail``), never silently do either.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


class DeviceError(ValueError):
    """The requested device cannot be used and the policy forbids falling back."""


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    half: bool
    warnings: list[str] = field(default_factory=list)


def _unavailable(device: torch.device) -> str | None:
    """Why a CUDA device cannot be used, or None when it can."""
    if not torch.cuda.is_available():
        return "CUDA is not available (torch.cuda.is_available() is False)"
    index = 0 if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        return f"there are only {count} CUDA device(s)"
    return None


def resolve_device(requested: str, fallback: str, half: bool) -> DeviceChoice:
    """The device and precision to use; DeviceError for an unknown name, or an unusable device
    with fallback 'fail'."""
    try:
        device = torch.device(requested.strip())
    except RuntimeError:
        raise DeviceError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {requested!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {requested!r}")
    warnings: list[str] = []
    if device.type == "cuda":
        reason = _unavailable(device)
        if reason is None:
            return DeviceChoice(str(device), half)
        if fallback != "cpu":
            raise DeviceError(f"device {requested!r} is unavailable: {reason} "
                              "(device_fallback is 'fail')")
        warnings.append(f"device {requested!r} is unavailable: {reason}; FALLING BACK TO THE "
                        "CPU (device_fallback is 'cpu'): expect a much lower frame rate")
    if half:
        warnings.append("half precision needs CUDA: running in fp32 on the CPU")
    return DeviceChoice("cpu", False, warnings)
