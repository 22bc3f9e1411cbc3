"""The tracker's health: what it gathers over a period and how that becomes a level, a message
and key-value pairs (the node publishes them on /diagnostics; ros/diagnostics.py builds the
message). ROS-free and unit-tested.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from rgbt_tracking_ros.timing.monitor import KEYS as TIME_OFFSET_KEYS

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels

# Keys of the values, in the order published (tests and tools read them by these names).
KEYS = (
    "state", "target_id", "rgb_rate_hz", "thermal_rate_hz", "pair_rate_hz", "tracked_rate_hz",
    "last_pair_dt_ms", "dropped_rgb", "dropped_thermal", "stale_pairs_dropped", "malformed_rgb",
    "malformed_thermal", "pairing_resets", "inference_ms_mean", "inference_ms_max",
    "latency_ms_mean", "latency_ms_max", "model_errors", "device", "model", "pairing",
    "answered_pairs", "offered_pairs", "reason",
    # The cameras' stamp offset from the images (rgbt_tracking_ros/timing/monitor.py).
    *TIME_OFFSET_KEYS,
)


@dataclass
class PeriodTimes:
    """Inference and latency samples of one period, in milliseconds."""

    inference_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    tracked: int = 0
    taken: int = 0  # pairs the worker took (answered or not)
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

    def took(self) -> None:
        with self._lock:
            self._period.taken += 1

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
    stale_in_period: int = 0             # pairs that expired before the worker took them
    latency_budget_s: float = 0.5
    min_answered_ratio: float = 0.5
    reason: str = ""                     # why the state is what it is
    time_offset: Sequence[tuple[str, str]] = ()  # OffsetMonitor.values(); missing keys: ""
    time_offset_warning: str | None = None  # stamps of one moment differ by > slop / 2: WARN


_MIN_JUDGED_PAIRS = 5  # fewer pairs in a period: too few to judge the answered ratio
# A stamp further behind the node's clock than this, or further ahead than OFF_CLOCK_AHEAD_S,
# is not on that clock (a recording replayed without use_sim_time, a camera clock that is not
# synchronised): now - stamp is then the clocks' difference, not a latency. The mailbox keeps
# a true latency within max_pair_wait plus one inference time, far below this.
OFF_CLOCK_BEHIND_S = 600.0
OFF_CLOCK_AHEAD_S = 1.0


def _rate(count: int, elapsed: float) -> float:
    return count / elapsed if elapsed > 0 else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _span(seconds: float) -> str:
    """A clock difference in the largest unit that keeps it readable."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _on_clock(latency_ms: float) -> bool:
    return -1e3 * OFF_CLOCK_AHEAD_S <= latency_ms <= 1e3 * OFF_CLOCK_BEHIND_S


def _off_clock(off_ms: Sequence[float], outputs: int) -> str:
    """Why `off_ms`, the now - stamp of outputs off the node's clock, are no latencies."""
    worst = max(off_ms, key=abs) / 1e3
    where = f"{_span(worst)} behind" if worst > 0 else f"{_span(-worst)} ahead of"
    return (f"image stamps are {where} the node's clock on {len(off_ms)} of {outputs} "
            "output(s): not on its clock (a recording replayed without use_sim_time and "
            "/clock, or an unsynchronised camera clock), so their latency is not measured")


def evaluate(snapshot: Snapshot) -> tuple[int, str, list[tuple[str, str]]]:
    """(level, message, key-value pairs): ERROR for a model failure or a silent camera, STALE
    while a camera has sent nothing, WARN for sync trouble, camera stamps whose offset (found
    from the images) exceeds half the slop, malformed images, a tracker that
    answers too few of the pairs, image stamps that are not on the node's clock or a latency
    over budget, else OK."""
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
    offered = times.taken + s.stale_in_period
    if offered >= _MIN_JUDGED_PAIRS and times.taken < s.min_answered_ratio * offered:
        mean = _mean(times.inference_ms)
        cost = f"; inference takes {mean:.0f} ms per pair" if times.inference_ms else ""
        problems.append((WARN, f"the tracker answered {times.taken} of {offered} image pairs "
                               f"({_rate(times.taken, s.elapsed_s):.1f} Hz of "
                               f"{_rate(offered, s.elapsed_s):.1f} Hz){cost}: the model is too "
                               "slow for the cameras (use a GPU, half precision or a smaller "
                               "model)"))
    latencies = [ms for ms in times.latency_ms if _on_clock(ms)]
    off_clock = [ms for ms in times.latency_ms if not _on_clock(ms)]
    if off_clock:
        problems.append((WARN, _off_clock(off_clock, len(times.latency_ms))))
    budget_ms = 1e3 * s.latency_budget_s
    if latencies and _mean(latencies) > budget_ms:
        problems.append((WARN, f"latency {_mean(latencies):.0f} ms (max "
                               f"{max(latencies):.0f} ms) from image stamp to output "
                               f"exceeds latency_budget {budget_ms:.0f} ms"))
    # Published pairs whose stamps are all off the clock have no latency: empty, not 0.
    unmeasured = bool(off_clock) and not latencies
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
        "latency_ms_mean": "" if unmeasured else f"{_mean(latencies):.2f}",
        "latency_ms_max": "" if unmeasured else f"{max(latencies, default=0.0):.2f}",
        "model_errors": str(s.model_errors_total),
        "device": s.device,
        "model": s.model,
        "pairing": s.pairing,
        "answered_pairs": str(times.taken),
        "offered_pairs": str(offered),
        "reason": s.reason,
        **{key: "" for key in TIME_OFFSET_KEYS},
        **dict(s.time_offset),
    }
    return level, message, [(key, values[key]) for key in KEYS]
