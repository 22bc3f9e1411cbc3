"""The cameras as the tracking policy sees them: usable frames, silence, pairing and the
continuity of the paired stream. ROS-free: the node, `bag evaluate` and the tests feed it.

* A camera is *silent* when it has sent no usable frame for ``camera_timeout`` seconds of
  wall (or test) time: a camera that sends only malformed frames counts as stopped.
* The stream of image pairs is *interrupted* when the pairer reset (stamps went back), when
  a pair's stamp is older than the previous pair's by more than ``jump_back_tolerance``, or
  newer by more than ``camera_timeout`` (a gap the tracker cannot bridge).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from rgbt_tracking_ros.codec import ImageConversionError  # ROS-free module
from rgbt_tracking_ros.sync import Pair, PairingConfig, StampPairer

_NS = 1_000_000_000
CAMERAS = ("rgb", "thermal")


@dataclass
class CameraCounters:
    received: int = 0
    unusable: int = 0
    last_arrival: float | None = None
    last_usable: float | None = None
    last_problem: str | None = None


@dataclass(frozen=True)
class SilenceChange:
    """Cameras that went silent or came back since the previous check, with the reason text."""

    silent: list[str]
    back: list[str]
    reasons: dict[str, str]
    all_silent: list[str]


def rgb_array(image: np.ndarray) -> np.ndarray:
    """The tracker's RGB input: (H, W, 3) uint8; an 8-bit grey camera is repeated to 3 channels."""
    if image.dtype != np.uint8:
        raise ImageConversionError(f"the RGB camera sent {image.dtype} pixels; it needs 8-bit "
                                   "colour (rgb8/bgr8/rgba8/bgra8) or mono8")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


def thermal_array(image: np.ndarray) -> np.ndarray:
    """The tracker takes uint8/uint16/float thermal frames: signed 16-bit becomes float32."""
    if image.dtype == np.int16:
        return image.astype(np.float32)
    return image


def camera_image(camera: str, image: np.ndarray) -> np.ndarray:
    """A converted message's pixels as the tracker takes them for that camera."""
    return rgb_array(image) if camera == "rgb" else thermal_array(image)


class CameraWatch:
    """Arrivals of each camera, usable or not; thread-safe. Times are the caller's clock."""

    def __init__(self, labels: dict[str, str], started: float) -> None:
        self.labels = dict(labels)
        self._started = started
        self._lock = threading.Lock()
        self._cameras = {name: CameraCounters() for name in labels}
        self._silent: set[str] = set()

    def arrived(self, camera: str, now: float, usable: bool, problem: str | None = None) -> None:
        with self._lock:
            c = self._cameras[camera]
            c.received += 1
            c.last_arrival = now
            if usable:
                c.last_usable = now
            else:
                c.unusable += 1
                c.last_problem = problem

    def counters(self, camera: str) -> CameraCounters:
        with self._lock:
            c = self._cameras[camera]
            return CameraCounters(c.received, c.unusable, c.last_arrival, c.last_usable,
                                  c.last_problem)

    def check(self, now: float, timeout: float) -> SilenceChange:
        """Which cameras are silent now: sent frames before, but no usable one for timeout s."""
        with self._lock:
            silent, reasons = set(), {}
            for name, c in self._cameras.items():
                if c.last_arrival is None:
                    continue  # never sent anything: "waiting", see waiting()
                since = c.last_usable if c.last_usable is not None else self._started
                if now - since <= timeout:
                    continue
                silent.add(name)
                label = self.labels[name]
                if c.last_arrival is not None and now - c.last_arrival <= timeout:
                    reasons[name] = (f"{label} sent only unusable images for {now - since:.1f} s "
                                     f"({c.last_problem})")
                else:
                    reasons[name] = f"{label} sent no image for {now - since:.1f} s"
            change = SilenceChange(sorted(silent - self._silent), sorted(self._silent - silent),
                                   reasons, sorted(silent))
            self._silent = silent
            return change

    def silent(self) -> list[str]:
        with self._lock:
            return sorted(self._silent)

    def waiting(self, now: float, timeout: float) -> list[str]:
        """Labels of cameras that sent nothing since start, once timeout has passed."""
        with self._lock:
            if now - self._started <= timeout:
                return []
            return [self.labels[n] for n, c in self._cameras.items() if c.last_arrival is None]


class Continuity:
    """Watches the stamps of consecutive image pairs; not thread-safe (one feeding thread)."""

    def __init__(self, gap_s: float, jump_back_s: float) -> None:
        self.gap_s, self.jump_back_s = gap_s, jump_back_s
        self._last: int | None = None

    def check(self, stamp_ns: int) -> str | None:
        """Why the stream is interrupted before this pair, or None."""
        last, self._last = self._last, stamp_ns
        if last is None:
            return None
        if last - stamp_ns > self.jump_back_s * _NS:
            return (f"image stamps went back {(last - stamp_ns) / _NS:.3f} s (bag loop or "
                    "restarted camera)")
        if stamp_ns - last > self.gap_s * _NS:
            return (f"no image pair for {(stamp_ns - last) / _NS:.1f} s of camera time "
                    f"(camera_timeout {self.gap_s:g} s)")
        return None

    def forget(self) -> None:
        self._last = None


class Pairing:
    """The package's StampPairer behind a lock, replaceable live (slop, offsets, tolerance),
    with its offsets movable in place (an estimated camera offset) and its resets reported as
    interruptions."""

    def __init__(self, config: PairingConfig) -> None:
        self._lock = threading.Lock()
        self._pairer = StampPairer(config)
        self._resets_seen = 0
        self._retired: tuple[int, ...] = (0, 0, 0, 0, 0)  # counters of replaced pairers

    @property
    def config(self) -> PairingConfig:
        return self._pairer.config

    def reconfigure(self, config: PairingConfig) -> int:
        """A new pairer with the config; returns the waiting frames it dropped."""
        with self._lock:
            old = self._pairer.stats
            self._retired = tuple(a + b for a, b in zip(self._retired, (
                old.paired, old.dropped_rgb + old.queued_rgb,
                old.dropped_thermal + old.queued_thermal, old.resets,
                old.received_rgb + old.received_thermal)))
            self._pairer = StampPairer(config)
            self._resets_seen = 0
            return old.queued_rgb + old.queued_thermal

    def set_offsets(self, rgb_offset: float, thermal_offset: float) -> None:
        """New per-camera offsets (s) for the running pairer; waiting frames are kept."""
        with self._lock:
            self._pairer.set_offsets(rgb_offset, thermal_offset)

    def add(self, camera: str, stamp_ns: int, frame: object) -> tuple[list[Pair], str | None]:
        """Pairs this frame completed, and the reason when the pairer reset on it."""
        with self._lock:
            pairer = self._pairer
            add = pairer.add_rgb if camera == "rgb" else pairer.add_thermal
            pairs = add(stamp_ns, frame)
            stats = pairer.stats
            reason = None
            if stats.resets != self._resets_seen:
                self._resets_seen = stats.resets
                reason = stats.last_reset_reason
            return pairs, reason

    def counts(self) -> tuple[int, int, int, int, float | None]:
        """(paired, dropped rgb, dropped thermal, resets, last dt) since the first pairer."""
        with self._lock:
            s = self._pairer.stats
            r = self._retired
            return (s.paired + r[0], s.dropped_rgb + r[1], s.dropped_thermal + r[2],
                    s.resets + r[3], s.last_dt)

    def health_warning(self, min_ratio: float, rgb_name: str, thermal_name: str) -> str | None:
        with self._lock:
            pairer = self._pairer
        return pairer.health_warning(min_ratio, rgb_name=rgb_name, thermal_name=thermal_name)
