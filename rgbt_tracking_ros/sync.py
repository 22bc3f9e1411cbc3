"""Pair RGB and thermal frames by header stamp, without ROS.

The node uses message_filters' ApproximateTimeSynchronizer where it is installed and this
module otherwise, with the same ``queue_size`` and ``slop``. Unlike message_filters, this
pairer takes the *closest* partner within slop rather than the first, counts every frame
it drops, corrects constant per-camera clock offsets, survives bag loops, and never runs
user code under its lock: it only returns pairs, the caller processes them.

Stamps are int nanoseconds (``stamp_ns(header.stamp.sec, header.stamp.nanosec)``): float
seconds since 1970 keep only about 0.2 us, so a pair exactly at ``slop`` would pair or
not depending on rounding. Durations in ``PairingConfig`` are float seconds, converted to
nanoseconds once.

Algorithm. Each camera keeps a queue sorted by corrected stamp. A frame's candidates are
the unpaired frames of the other camera within slop (inclusive); its best match is the
closest (ties: earlier stamp, then earlier arrival). Two frames are paired when each is
the other's best match and neither can improve: no later frame of the other camera can be
closer. Later frames of a camera are stamped at or after its *next possible stamp*, its
newest stamp plus its minimum frame spacing ``B`` (below), so a frame at distance ``dt``
from its match is final once that camera's next possible stamp is at least ``dt`` past it.
A pair is therefore emitted on the arrival of its second frame whenever the other camera's
next frame must be farther away, which at equal rates is always: no added latency. Late
partners within slop are waited for. A frame with no candidate is dropped once the other
camera's next possible stamp is more than slop past it.

Minimum frame spacing. Each camera's spacing is learnt from its own stamps: over the last
``_SPACING_WINDOW`` increases of its newest stamp, ``B = max(0, 2 * min - median)``: the
nominal period without jitter, the period less twice the observed jitter spread otherwise,
and 0 (wait for the next frame, as before) until ``_MIN_SPACING_SAMPLES`` are known or
when drops make the median spacing large. The guarantee "never pairs suboptimally"
holds exactly while every new stamp of a camera is at least its ``B`` after its newest
stamp (in order, and no closer to the previous frame than the spacings just seen allow).
A camera whose stamps suddenly bunch closer than that can lose a closer partner;
``bench/pairing.py`` measures how often (docs/timing.md).

A full queue pushes out its oldest frame: paired now if it and its best match are
each other's best (waiting longer cannot help it), else dropped. Drops are counted per
camera, so ``received == paired + dropped + queued`` for each camera.

Out-of-order frames (older than their camera's newest by at most ``jump_back_tolerance``)
are inserted in stamp order and can pair with frames still waiting; pairs already
returned are never revisited. A larger jump back (bag loop, restarted camera) clears both
queues (their frames count as dropped) and both cameras' newest stamps, so the other
camera's own jump back to the new timeline does not reset a second time.
"""
from __future__ import annotations

import math
import operator
import statistics
import threading
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Camera = Literal["rgb", "thermal"]

_NS_PER_S = 1_000_000_000
# Arrivals used to estimate the typical stamp difference between the cameras (~1 s at 30 Hz).
_LEAD_WINDOW = 32
# Stamp increases per camera used to learn its minimum frame spacing (~2 s at 30 Hz).
_SPACING_WINDOW = 64
# Fewer increases than this: spacing unknown, a frame waits for the other camera's next one.
_MIN_SPACING_SAMPLES = 8
# Fewer messages than this since the last health check: too early to judge.
_MIN_HEALTH_MESSAGES = 10
# A stamp difference this many times slop is blamed on clocks rather than on slop.
_CLOCK_FACTOR = 3
_QOS_HINT = "a reliable subscriber gets nothing from a best-effort camera"


def stamp_ns(sec: int, nanosec: int) -> int:
    """A ROS header stamp (builtin_interfaces/Time) as int nanoseconds."""
    return int(sec) * _NS_PER_S + int(nanosec)


def _to_ns(seconds: float) -> int:
    return round(seconds * _NS_PER_S)


def _as_stamp(stamp: int) -> int:
    """Accept Python or numpy ints; refuse floats, which would be silently read as ns."""
    try:
        return operator.index(stamp)
    except TypeError:
        raise TypeError(
            f"stamps are int nanoseconds (use stamp_ns(sec, nanosec)), got {type(stamp).__name__}"
        ) from None


def _is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class PairingConfig:
    """Pairing parameters; durations in seconds.

    ``slop`` should stay below half the faster camera's period (15 ms at 30 Hz), or a frame
    can pair with its neighbour's partner. Offsets are ADDED to that camera's stamps before
    matching (thermal stamped 0.15 s late: ``thermal_offset=-0.15``).
    """

    slop: float = 0.015
    queue_size: int = 10
    rgb_offset: float = 0.0
    thermal_offset: float = 0.0
    jump_back_tolerance: float = 0.5

    def __post_init__(self) -> None:
        if not (_is_finite_number(self.slop) and self.slop >= 0):
            raise ValueError(f"slop must be a finite number of seconds >= 0, got {self.slop!r}")
        if not (isinstance(self.queue_size, int) and not isinstance(self.queue_size, bool)
                and self.queue_size >= 1):
            raise ValueError(f"queue_size must be an int >= 1, got {self.queue_size!r}")
        for name in ("rgb_offset", "thermal_offset"):
            value = getattr(self, name)
            if not _is_finite_number(value):
                raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
        if not (_is_finite_number(self.jump_back_tolerance) and self.jump_back_tolerance > 0):
            raise ValueError("jump_back_tolerance must be a finite number of seconds > 0, "
                             f"got {self.jump_back_tolerance!r}")


@dataclass(frozen=True)
class Pair:
    """One RGB and one thermal message, with their offset-corrected stamps (ns)."""

    rgb: object
    thermal: object
    rgb_stamp_ns: int
    thermal_stamp_ns: int

    @property
    def dt_ns(self) -> int:
        return abs(self.rgb_stamp_ns - self.thermal_stamp_ns)

    @property
    def dt(self) -> float:
        """|rgb - thermal| after offsets, in seconds."""
        return self.dt_ns / _NS_PER_S


@dataclass(frozen=True)
class PairingStats:
    """Counters since construction; per camera, received == paired + dropped + queued."""

    received_rgb: int
    received_thermal: int
    paired: int
    dropped_rgb: int
    dropped_thermal: int
    queued_rgb: int
    queued_thermal: int
    resets: int
    last_dt: float | None
    last_reset_reason: str | None


@dataclass(eq=False)
class _Frame:
    # eq=False: removing a frame compares identities, never the user's message.
    stamp: int
    seq: int
    msg: object


def _stamp(frame: _Frame) -> int:
    return frame.stamp


def _order(frame: _Frame) -> tuple[int, int]:
    return frame.stamp, frame.seq


@dataclass(eq=False)
class _Stream:
    """One camera: its waiting frames, newest stamp, counters and stamp-difference samples."""

    offset_ns: int
    queue: list[_Frame] = field(default_factory=list)
    newest: int | None = None
    received: int = 0
    dropped: int = 0
    # (thermal newest - rgb newest) seen at each of this camera's arrivals.
    leads: deque[int] = field(default_factory=lambda: deque(maxlen=_LEAD_WINDOW))
    # Increases of the newest stamp, and the minimum spacing B they imply (0: unknown).
    spacings: deque[int] = field(default_factory=lambda: deque(maxlen=_SPACING_WINDOW))
    min_spacing: int = 0

    def clear(self) -> None:
        """Forget the frames and the timeline; the learnt spacing is the camera's and stays."""
        self.dropped += len(self.queue)
        self.queue.clear()
        self.newest = None
        self.leads.clear()

    def note_stamp(self, stamp: int) -> None:
        if self.newest is not None and stamp > self.newest:
            self.spacings.append(stamp - self.newest)
            if len(self.spacings) >= _MIN_SPACING_SAMPLES:
                ordered = sorted(self.spacings)
                self.min_spacing = max(0, 2 * ordered[0] - ordered[len(ordered) // 2])
        self.newest = stamp if self.newest is None else max(self.newest, stamp)

    def next_possible(self) -> int | None:
        """The earliest stamp a later frame of this camera can carry (None: no frame yet)."""
        return None if self.newest is None else self.newest + self.min_spacing


@dataclass(frozen=True)
class _HealthSample:
    received_rgb: int
    received_thermal: int
    paired: int
    lead_ns: float | None


class StampPairer:
    """Pairs RGB and thermal messages by stamp; thread-safe, one lock, no callbacks."""

    def __init__(self, config: PairingConfig | None = None) -> None:
        self.config = config if config is not None else PairingConfig()
        self._slop = _to_ns(self.config.slop)
        self._jump_back = _to_ns(self.config.jump_back_tolerance)
        self._rgb = _Stream(_to_ns(self.config.rgb_offset))
        self._thermal = _Stream(_to_ns(self.config.thermal_offset))
        self._lock = threading.Lock()
        self._seq = 0
        self._paired = 0
        self._resets = 0
        self._last_dt_ns: int | None = None
        self._last_reset_reason: str | None = None
        self._health_base = (0, 0, 0)

    def add_rgb(self, stamp: int, msg: object) -> list[Pair]:
        """Add an RGB frame (stamp in int ns); returns the pairs it completed, in stamp order."""
        return self._add("rgb", stamp, msg)

    def add_thermal(self, stamp: int, msg: object) -> list[Pair]:
        """Add a thermal frame (stamp in int ns); returns the pairs it completed, in stamp order."""
        return self._add("thermal", stamp, msg)

    def set_offsets(self, rgb_offset: float | None = None, thermal_offset: float | None = None) -> None:
        """Change the per-camera offsets (seconds) while running, e.g. to an offset estimated
        from the images; None keeps one. Waiting frames move with their camera's offset, so
        they can still pair; pairs already returned are not revisited."""
        with self._lock:
            config = self.config
            new = PairingConfig(config.slop, config.queue_size,
                                config.rgb_offset if rgb_offset is None else rgb_offset,
                                config.thermal_offset if thermal_offset is None else thermal_offset,
                                config.jump_back_tolerance)
            for stream, offset in ((self._rgb, new.rgb_offset), (self._thermal, new.thermal_offset)):
                delta = _to_ns(offset) - stream.offset_ns
                stream.offset_ns += delta
                for frame in stream.queue:
                    frame.stamp += delta
                if stream.newest is not None:
                    stream.newest += delta
            # Lead samples mix the old and the new offsets: start them again.
            self._rgb.leads.clear()
            self._thermal.leads.clear()
            self.config = new

    def reset(self, reason: str = "reset() called") -> None:
        """Drop (and count) all waiting frames and forget the newest stamps, e.g. on a time jump."""
        with self._lock:
            self._reset(reason)

    @property
    def stats(self) -> PairingStats:
        with self._lock:
            return PairingStats(
                received_rgb=self._rgb.received,
                received_thermal=self._thermal.received,
                paired=self._paired,
                dropped_rgb=self._rgb.dropped,
                dropped_thermal=self._thermal.dropped,
                queued_rgb=len(self._rgb.queue),
                queued_thermal=len(self._thermal.queue),
                resets=self._resets,
                last_dt=None if self._last_dt_ns is None else self._last_dt_ns / _NS_PER_S,
                last_reset_reason=self._last_reset_reason,
            )

    def health_warning(
        self, min_ratio: float = 1 / 3, *, rgb_name: str = "rgb", thermal_name: str = "thermal"
    ) -> str | None:
        """A warning with the likely cause when pairs fall below min_ratio of the slower camera's
        messages since the previous check, else None.

        Call it on a timer (image_transport checks every 10 s). Each check that sees at least
        10 new messages starts a new period; fewer are too early to judge and return None.
        The names (e.g. topic names) only label the message.
        """
        if not (_is_finite_number(min_ratio) and 0 < min_ratio <= 1):
            raise ValueError(f"min_ratio must be in (0, 1], got {min_ratio!r}")
        with self._lock:
            sample = self._take_health_sample()
        if sample is None or _is_healthy(sample, min_ratio):
            return None
        return self._diagnose(sample, rgb_name, thermal_name)

    def _add(self, camera: Camera, stamp: int, msg: object) -> list[Pair]:
        raw = _as_stamp(stamp)
        with self._lock:
            stream = self._rgb if camera == "rgb" else self._thermal
            corrected = raw + stream.offset_ns
            self._reset_on_jump_back(camera, stream, corrected)
            self._note_arrival(stream, corrected)
            insort(stream.queue, _Frame(corrected, self._seq, msg), key=_order)
            self._seq += 1
            return self._settle()

    def _reset_on_jump_back(self, camera: Camera, stream: _Stream, stamp: int) -> None:
        if stream.newest is not None and stream.newest - stamp > self._jump_back:
            back = (stream.newest - stamp) / _NS_PER_S
            self._reset(f"{camera} stamp jumped back {back:.3f} s (bag loop or restarted camera)")

    def _reset(self, reason: str) -> None:
        self._rgb.clear()
        self._thermal.clear()
        self._resets += 1
        self._last_reset_reason = reason

    def _note_arrival(self, stream: _Stream, stamp: int) -> None:
        stream.received += 1
        stream.note_stamp(stamp)
        if self._rgb.newest is not None and self._thermal.newest is not None:
            stream.leads.append(self._thermal.newest - self._rgb.newest)

    def _settle(self) -> list[Pair]:
        """Pair and drop what is final, then push out what overflows the queues."""
        pairs = self._pair_and_drop()
        while (full := self._overflowing()) is not None:
            pairs += self._push_out_oldest(*full)
            pairs += self._pair_and_drop()
        return sorted(pairs, key=lambda pair: (pair.rgb_stamp_ns, pair.thermal_stamp_ns))

    def _pair_and_drop(self) -> list[Pair]:
        pairs = []
        while (match := self._final_match()) is not None:
            pairs.append(self._commit(*match))
        # Dropped frames had no candidate, so dropping them changes no one's best match.
        self._drop_unpairable(self._rgb, self._thermal)
        self._drop_unpairable(self._thermal, self._rgb)
        return pairs

    def _final_match(self) -> tuple[_Frame, _Frame] | None:
        """An RGB and a thermal frame that are each other's best match and cannot improve."""
        for rgb in self._rgb.queue:
            thermal = self._best_match(rgb, self._thermal.queue)
            if thermal is None or self._best_match(thermal, self._rgb.queue) is not rgb:
                continue
            dt = abs(rgb.stamp - thermal.stamp)
            if (_is_final(rgb, dt, self._thermal.next_possible())
                    and _is_final(thermal, dt, self._rgb.next_possible())):
                return rgb, thermal
        return None

    def _best_match(self, frame: _Frame, queue: list[_Frame]) -> _Frame | None:
        """The closest frame of a sorted queue within slop (ties: earlier stamp, then arrival)."""
        low = bisect_left(queue, frame.stamp - self._slop, key=_stamp)
        high = bisect_right(queue, frame.stamp + self._slop, key=_stamp)
        return min(queue[low:high], default=None,
                   key=lambda other: (abs(other.stamp - frame.stamp), _order(other)))

    def _commit(self, rgb: _Frame, thermal: _Frame) -> Pair:
        self._rgb.queue.remove(rgb)
        self._thermal.queue.remove(thermal)
        self._paired += 1
        self._last_dt_ns = abs(rgb.stamp - thermal.stamp)
        return Pair(rgb.msg, thermal.msg, rgb.stamp, thermal.stamp)

    def _drop_unpairable(self, stream: _Stream, other: _Stream) -> None:
        """Drop frames with no candidate that no later frame of the other camera can reach."""
        other_next = other.next_possible()
        if other_next is None:
            return
        limit = other_next - self._slop
        keep = [frame for frame in stream.queue
                if frame.stamp >= limit or self._best_match(frame, other.queue) is not None]
        stream.dropped += len(stream.queue) - len(keep)
        stream.queue[:] = keep

    def _overflowing(self) -> tuple[_Stream, _Stream] | None:
        """A camera whose queue exceeds queue_size, with the other camera."""
        for stream, other in ((self._rgb, self._thermal), (self._thermal, self._rgb)):
            if len(stream.queue) > self.config.queue_size:
                return stream, other
        return None

    def _push_out_oldest(self, stream: _Stream, other: _Stream) -> list[Pair]:
        """Pair the oldest frame with its best match if that is mutual, else drop it.

        Waiting longer cannot help it, and this keeps e.g. the last pair before a camera goes
        silent, whose confirmation needs a frame that may never come.
        """
        oldest = stream.queue[0]
        match = self._best_match(oldest, other.queue)
        if match is not None and self._best_match(match, stream.queue) is oldest:
            rgb, thermal = (oldest, match) if stream is self._rgb else (match, oldest)
            return [self._commit(rgb, thermal)]
        del stream.queue[0]
        stream.dropped += 1
        return []

    def _take_health_sample(self) -> _HealthSample | None:
        """Counts since the previous judged check; starts a new period when enough arrived."""
        now = (self._rgb.received, self._thermal.received, self._paired)
        rgb, thermal, paired = (a - b for a, b in zip(now, self._health_base))
        if rgb + thermal < _MIN_HEALTH_MESSAGES:
            return None
        self._health_base = now
        return _HealthSample(rgb, thermal, paired, self._typical_lead_ns())

    def _typical_lead_ns(self) -> float | None:
        """Typical (thermal - rgb) stamp difference, each camera's arrivals weighted equally.

        A frame arrives roughly when the other camera's newest was stamped within one period,
        so the estimate is good to about half a frame period: enough to spot clock offsets.
        """
        if not self._rgb.leads or not self._thermal.leads:
            return None
        return (statistics.median(self._rgb.leads) + statistics.median(self._thermal.leads)) / 2

    def _diagnose(self, sample: _HealthSample, rgb_name: str, thermal_name: str) -> str:
        counts = (f"{sample.received_rgb} {rgb_name} and {sample.received_thermal} {thermal_name} "
                  f"messages, {sample.paired} pairs since the last check")
        head = f"{rgb_name} and {thermal_name} do not appear to be synchronized ({counts}): "
        received = ((rgb_name, sample.received_rgb), (thermal_name, sample.received_thermal))
        for name, count in received:
            if count == 0:
                return head + f"no {name} images: check the topic name and QoS ({_QOS_HINT})"
        lead = sample.lead_ns
        if lead is not None and abs(lead) > _CLOCK_FACTOR * self._slop:
            lead_s = lead / _NS_PER_S
            fix = self.config.thermal_offset - lead_s
            side = "later" if lead > 0 else "earlier"
            return head + (
                f"stamps differ by about {abs(lead_s):.3g} s ({thermal_name} {side}): the cameras "
                f"may stamp on different clocks; set rgb_offset/thermal_offset (e.g. "
                f"thermal_offset={fix:.3g}) or use use_sim_time with a /clock source"
            )
        return head + (f"pairs far fewer than messages: raise slop (now {self.config.slop:g} s) "
                       f"or queue_size (now {self.config.queue_size})")


def _is_final(frame: _Frame, dt: int, other_next: int | None) -> bool:
    """No later frame of the other camera (stamped >= other_next) can come closer than dt;
    on a tie the frame already here wins (earlier stamp)."""
    return other_next is not None and other_next - frame.stamp >= dt


def _is_healthy(sample: _HealthSample, min_ratio: float) -> bool:
    """Judged against the slower camera, so 9 Hz thermal beside 30 Hz RGB is healthy."""
    slower = min(sample.received_rgb, sample.received_thermal)
    return slower > 0 and sample.paired >= min_ratio * slower
