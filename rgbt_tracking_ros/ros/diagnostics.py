"""The node's /diagnostics status: what it gathers over a period and how that becomes a level,
a message and key-value pairs.

diagnostic_updater is not installable here, so the DiagnosticArray is built directly
(diagnostic_msgs is). Everything but :func:`diagnostic_array` is plain Python and unit-tested.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels

# Keys of the values, in the order published (tests and tools read them by these names).
KEYS = (
    "state", "target_id", "rgb_rate_hz", "thermal_rate_hz", "pair_rate_hz", "tracked_rate_hz",
    "last_pair_dt_ms", "dropped_rgb", "dropped_thermal", "stale_pairs_dropped", "malformed_rgb",
    "malformed_thermal", "pairing_resets", "inference_ms_mean", "inference_ms_max",
    "latency_ms_mean", "latency_ms_max", "model_errors", "device", "model", "pairing",
    # Camera time offset from the images (rgbt_tracking_ros/timing/monitor.py KEYS).
    "time_offset_ms", "time_offset_residual_ms", "time_offset_correlation", "time_offset_applied",
)


@dataclass
class PeriodTimes:
    """Inference and latency samples of one period, in milliseconds."""

    inference_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    tracked: int = 0
    model_errors: int = 0
    last_model_error: str | None = None


class WorkerStats:
    """Filled by the worker, emptied by the diagnostics timer; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._period = PeriodTimes()
        self.model_errors_total = 0

    def published(self, inference_ms: float, latency_ms: float) -> None:
        with self._lock:
            self._period.inference_ms.append(inference_ms)
            self._period.latency_ms.append(latency_ms)
            self._period.tracked += 1

    def model_error(self, text: str) -> None:
        with self._lock:
            self._period.model_errors += 1
            self._period.last_model_error = text
            self.model_errors_total += 1

    def take(self) -> PeriodTimes:
        with self._lock:
            period, self._period = self._period, PeriodTimes()
            return period


@dataclass(frozen=True)
class Snapshot:
    """Everything one diagnostics message reports; counts are per period unless *_total."""

    elapsed_s: float
    received_rgb: int
    received_thermal: int
    paired: int
    dropped_rgb_total: int
    dropped_thermal_total: int
    stale_pairs_total: int
    malformed_rgb_total: int
    malformed_thermal_total: int
    malformed_in_period: int
    last_malformed: str | None
    resets_total: int
    last_pair_dt_s: float | None
    times: PeriodTimes
    model_errors_total: int
    state: str
    target_id: str
    device: str
    model: str
    pairing: str
    sync_warning: str | None = None
    silent_cameras: Sequence[str] = ()   # stopped after delivering images: ERROR
    waiting_cameras: Sequence[str] = ()  # no image since activation: STALE
    time_offset: Sequence[tuple[str, str]] = ()  # OffsetMonitor.values(); missing keys: ""
    time_offset_warning: str | None = None  # stamps of one moment differ by > slop / 2: WARN


def _rate(count: int, elapsed: float) -> float:
    return count / elapsed if elapsed > 0 else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate(snapshot: Snapshot) -> tuple[int, str, list[tuple[str, str]]]:
    """(level, message, key-value pairs): ERROR for a model failure or a silent camera, STALE
    while a camera has sent nothing, WARN for sync trouble or malformed images, else OK."""
    s, times = snapshot, snapshot.times
    problems: list[tuple[int, str]] = []
    if times.model_errors:
        problems.append((ERROR, f"model failed on {times.model_errors} pair(s): "
                                f"{times.last_model_error}"))
    for camera in s.silent_cameras:
        problems.append((ERROR, f"{camera} stopped sending images: tracking STOPPED until it "
                                "returns"))
    for camera in s.waiting_cameras:
        problems.append((STALE, f"no images yet from {camera}: check the topic name, QoS "
                                "(image_qos) and that the camera runs"))
    if s.sync_warning:
        problems.append((WARN, s.sync_warning))
    if s.time_offset_warning:
        problems.append((WARN, s.time_offset_warning))
    if s.malformed_in_period:
        problems.append((WARN, f"{s.malformed_in_period} malformed image(s) dropped: "
                               f"{s.last_malformed}"))
    level = max((lvl for lvl, _ in problems), default=OK)
    if level == OK:
        message = s.state
    else:
        message = "; ".join(text for lvl, text in sorted(problems, key=lambda p: -p[0]))
    dt = "" if s.last_pair_dt_s is None else f"{s.last_pair_dt_s * 1e3:.2f}"
    values = {
        "state": s.state,
        "target_id": s.target_id,
        "rgb_rate_hz": f"{_rate(s.received_rgb, s.elapsed_s):.2f}",
        "thermal_rate_hz": f"{_rate(s.received_thermal, s.elapsed_s):.2f}",
        "pair_rate_hz": f"{_rate(s.paired, s.elapsed_s):.2f}",
        "tracked_rate_hz": f"{_rate(times.tracked, s.elapsed_s):.2f}",
        "last_pair_dt_ms": dt,
        "dropped_rgb": str(s.dropped_rgb_total),
        "dropped_thermal": str(s.dropped_thermal_total),
        "stale_pairs_dropped": str(s.stale_pairs_total),
        "malformed_rgb": str(s.malformed_rgb_total),
        "malformed_thermal": str(s.malformed_thermal_total),
        "pairing_resets": str(s.resets_total),
        "inference_ms_mean": f"{_mean(times.inference_ms):.2f}",
        "inference_ms_max": f"{max(times.inference_ms, default=0.0):.2f}",
        "latency_ms_mean": f"{_mean(times.latency_ms):.2f}",
        "latency_ms_max": f"{max(times.latency_ms, default=0.0):.2f}",
        "model_errors": str(s.model_errors_total),
        "device": s.device,
        "model": s.model,
        "pairing": s.pairing,
        **{key: "" for key in KEYS if key.startswith("time_offset_")},
        **dict(s.time_offset),
    }
    return level, message, [(key, values[key]) for key in KEYS]


def diagnostic_array(stamp: Any, name: str, hardware_id: str, level: int, message: str,
                     values: Sequence[tuple[str, str]]) -> Any:
    """A DiagnosticArray holding one status."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=bytes([level]), name=name, message=message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values])
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status.append(status)
    return array
