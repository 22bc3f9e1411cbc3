"""The target state the node's control callbacks and its inference worker share.

Services, clicks and detections only *request* changes; the one worker thread applies them, so
the model runs on a single thread. Every request names the image pair it refers to (the frame
its stamp names, or the newest pair when it names none) and is answered once the worker has
initialised on it (or failed to): the caller learns the truth, not "on the next pair".

A change that arrives while the worker is inside the model makes the worker discard that
result: a reply of ``stop`` is never followed by a TRACKING message computed before it.

States are decided here and only here:

* the tracker's own LOST (``TrackResult.state``) is published as LOST with its reason and is
  never undone by this layer;
* an interruption (a camera silent or sending only unusable frames, a gap between image pair
  stamps, stamps going back) marks a tracked target LOST with the reason: the model is not run
  on it again until a new target is set (set_target, a click, a detection), because a tracker
  whose target moved during the gap follows whatever is at the old place;
* a model failure is published as ERROR with the exception, and the target is kept.
"""
from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rgbt_tracking_ros.tracker.geometry import validate_box
from rgbt_tracking_ros.tracker.result import TrackState


class State(enum.IntEnum):
    """The TrackedObject states, with the message's constant values."""

    NEW = 0
    TRACKING = 1
    LOST = 2
    STOPPED = 3
    ERROR = 4


class Mode(enum.Enum):
    WAITING = "waiting"    # no target: a STOPPED message per pair; detections may set one
    STOPPED = "stopped"    # stopped on request: silent until a target is set explicitly
    TRACKING = "tracking"  # the model runs on every pair the worker takes
    LOST = "lost"          # interrupted: LOST per pair, the model idle, until a new target


@dataclass(frozen=True)
class Frames:
    """One image pair as arrays, with the RGB image's header (copied into every output)."""

    rgb: np.ndarray
    thermal: np.ndarray
    header: Any
    rgb_stamp_ns: int
    pair_dt_ns: int


@dataclass
class TargetRequest:
    """A new target, initialised on `frames` (the pair it names); answered through `answer`."""

    box: tuple[float, float, float, float]
    target_id: str
    source: str
    frames: Frames
    done: threading.Event = field(default_factory=threading.Event, compare=False)
    success: bool = False
    message: str = ""

    def answer(self, success: bool, message: str) -> None:
        self.success, self.message = success, message
        self.done.set()

    def wait(self, timeout: float) -> tuple[bool, str]:
        if not self.done.wait(timeout):
            return False, (f"the tracker did not apply the {self.source} target within "
                           f"{timeout:g} s (the model is busy); it may still be applied")
        return self.success, self.message


@dataclass(frozen=True)
class Outcome:
    """What the node publishes for one image pair (or, for events, the last one)."""

    frames: Frames | None
    state: State
    box: npt.NDArray[np.float64] | None
    confidence: float
    age: int
    frames_since_seen: int
    target_id: str
    inference_s: float
    reason: str = ""


@dataclass(frozen=True)
class StepResult:
    outcomes: list[Outcome]
    rejected: str | None = None  # why a requested target could not be used
    model_error: BaseException | None = None  # raised by the model on this pair


@dataclass(frozen=True)
class Status:
    mode: Mode
    state: State
    target_id: str
    box: npt.NDArray[np.float64] | None
    age: int
    frames_since_seen: int
    reason: str


def _as_result(value: Any) -> tuple[npt.NDArray[np.float64], float, bool, int | None, str]:
    """(box, confidence, lost, frames_since_seen or None, reason) of a tracker's answer:
    a TrackResult, or the (box, confidence[, state]) tuple of simpler trackers (CSRT)."""
    state = getattr(value, "state", None)
    if state is not None:
        return (np.asarray(value.box, np.float64), float(value.confidence),
                state is TrackState.LOST, int(value.frames_since_seen), str(value.reason))
    items = tuple(value)
    lost = len(items) > 2 and items[2] is TrackState.LOST
    return np.asarray(items[0], np.float64), float(items[1]), lost, None, ""


class TrackingSession:
    """Target mode and requests around one tracker; thread-safe."""

    def __init__(self, tracker: Any, target_id: str,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._tracker = tracker
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0
        self._pending: TargetRequest | None = None
        self._mode = Mode.WAITING
        self._target_id = target_id
        self._last: Outcome | None = None
        self._interruption = ""
        self._lost_count = 0

    @property
    def tracker(self) -> Any:
        return self._tracker

    def request(self, request: TargetRequest) -> None:
        """Queue a target; a request still waiting is answered as replaced."""
        with self._lock:
            self._generation += 1
            previous, self._pending = self._pending, request
        if previous is not None:
            previous.answer(False, f"replaced by a newer {request.source} target")

    def default_target_id(self, target_id: str) -> None:
        """The id of targets set later without one (the target_id parameter, changed live)."""
        with self._lock:
            if self._mode in (Mode.WAITING, Mode.STOPPED):
                self._target_id = target_id

    def pending(self) -> bool:
        with self._lock:
            return self._pending is not None

    def reset(self) -> None:
        """Forget the target and keep running: STOPPED messages, detections may set a new one."""
        self._forget(Mode.WAITING)

    def stop(self) -> None:
        """Forget the target and go quiet until set_target or a click sets one."""
        self._forget(Mode.STOPPED)

    def _forget(self, mode: Mode) -> None:
        with self._lock:
            self._generation += 1
            pending, self._pending = self._pending, None
            self._mode = mode
            self._last = None
            self._interruption = ""
        if pending is not None:
            pending.answer(False, f"cancelled: the target was {'reset' if mode is Mode.WAITING else 'stopped'}")

    def interrupt(self, reason: str) -> Outcome | None:
        """The input was interrupted: a tracked target is LOST from now on (the model is not
        run on it again until a new target is set). Returns the LOST outcome to publish now
        (on the last pair's header), or None when there was no tracked target."""
        with self._lock:
            if self._mode is not Mode.TRACKING:
                if self._mode is Mode.LOST and not self._interruption:
                    self._interruption = reason
                return None
            self._generation += 1  # a result being computed across the interruption is stale
            self._mode = Mode.LOST
            self._interruption = reason
            last = self._last
            self._lost_count = last.frames_since_seen if last is not None else 0
            if last is None:
                return None
            outcome = Outcome(last.frames, State.LOST, last.box, last.confidence, last.age,
                              self._lost_count, self._target_id, 0.0,
                              f"target lost: {reason}")
            self._last = outcome
            return outcome

    def status(self) -> Status:
        with self._lock:
            last = self._last
            if last is None:
                return Status(self._mode, State.STOPPED, self._target_id, None, 0, 0, "")
            return Status(self._mode, last.state, self._target_id, last.box, last.age,
                          last.frames_since_seen, last.reason)

    def accepts_detection(self) -> bool:
        """True while a detection may re-initialise: waiting for a target, or LOST."""
        with self._lock:
            if self._pending is not None:
                return False
            lost = self._last is not None and self._last.state is State.LOST
            return (self._mode in (Mode.WAITING, Mode.LOST)
                    or (self._mode is Mode.TRACKING and lost))

    def step(self, frames: Frames | None) -> StepResult:
        """Apply a pending request, then track `frames` (None: only apply the request).
        Called by the worker thread only; model exceptions become ERROR outcomes."""
        with self._lock:
            generation, request = self._generation, self._pending
            self._pending = None
            mode, target_id = self._mode, self._target_id
            last = self._last
        outcomes: list[Outcome] = []
        rejected = None
        error: BaseException | None = None
        if request is not None:
            outcome, rejected = self._initialise(request, mode, target_id)
            if outcome is not None:
                outcomes.append(outcome)
                mode, target_id, last = Mode.TRACKING, request.target_id, outcome
                # Initialised on a held, older pair: the current one still needs tracking.
                if frames is not None and frames.rgb_stamp_ns <= request.frames.rgb_stamp_ns:
                    frames = None
        if frames is not None:
            if mode is Mode.TRACKING:
                outcome, error = self._track(frames, target_id, last)
                outcomes.append(outcome)
            elif mode is Mode.LOST:
                outcomes.append(self._still_lost(frames, target_id, last))
            elif mode is Mode.WAITING:
                outcomes.append(Outcome(frames, State.STOPPED, None, 0.0, 0, 0, target_id, 0.0,
                                        "no target: waiting for set_target, a click or a "
                                        "detection"))
        with self._lock:
            if self._generation != generation:
                if request is not None and outcomes and outcomes[0].state is State.NEW:
                    request.answer(False, "cancelled by a reset, stop or newer target while "
                                          "initialising")
                return StepResult([], rejected, error)
            self._mode, self._target_id = mode, target_id
            if mode is Mode.LOST and outcomes:
                self._lost_count = outcomes[-1].frames_since_seen
            if outcomes:
                self._last = outcomes[-1]
        if request is not None and outcomes and outcomes[0].state is State.NEW:
            new_box = outcomes[0].box  # a NEW outcome holds the box it was initialised with
            box = None if new_box is None else [round(float(v), 2) for v in new_box]
            request.answer(True, f"target {request.target_id!r} set to {box} on the image pair "
                                 f"stamped {_stamp_text(request.frames.rgb_stamp_ns)}")
        return StepResult(outcomes, rejected, error)

    def _initialise(self, request: TargetRequest, mode: Mode,
                    active_id: str) -> tuple[Outcome | None, str | None]:
        frames = request.frames
        try:
            box = validate_box(request.box, *frames.rgb.shape[:2])
            start = self._clock()
            self._tracker.initialize(frames.rgb, frames.thermal, box)
        except Exception as error:  # noqa: BLE001 - the caller is told, the old target stays
            active = {Mode.TRACKING: f"target {active_id!r} stays active",
                      Mode.LOST: f"target {active_id!r} stays LOST"}.get(
                          mode, "no target is active")
            text = (f"{request.source} target could not be initialised "
                    f"({type(error).__name__}: {error}); {active}")
            request.answer(False, text)
            return None, text
        outcome = Outcome(frames, State.NEW, np.asarray(box, np.float64), 1.0, 0, 0,
                          request.target_id, self._clock() - start,
                          f"initialised from {request.source}")
        return outcome, None

    def _track(self, frames: Frames, target_id: str,
               last: Outcome | None) -> tuple[Outcome, BaseException | None]:
        start = self._clock()
        try:
            answer = self._tracker.track(frames.rgb, frames.thermal)
            box, confidence, lost, since, reason = _as_result(answer)
        except Exception as error:  # noqa: BLE001 - published as ERROR, the target is kept
            held = last.box if last is not None else None
            age = last.age if last is not None else 0
            return Outcome(frames, State.ERROR, held, 0.0, age,
                           last.frames_since_seen if last is not None else 0, target_id,
                           self._clock() - start,
                           f"model error: {type(error).__name__}: {error}"), error
        elapsed = self._clock() - start
        age = int(getattr(self._tracker, "age", (last.age + 1) if last is not None else 1))
        if since is None:
            previous = last.frames_since_seen if last is not None else 0
            since = previous + 1 if lost else 0
        if lost and not reason:
            reason = "the tracker lost the target"
        return Outcome(frames, State.LOST if lost else State.TRACKING, box, confidence, age,
                       since, target_id, elapsed, reason if lost else ""), None

    def _still_lost(self, frames: Frames, target_id: str, last: Outcome | None) -> Outcome:
        with self._lock:
            self._lost_count += 1
            count, reason = self._lost_count, self._interruption
        return Outcome(frames, State.LOST, last.box if last is not None else None,
                       0.0, last.age if last is not None else 0, count, target_id, 0.0,
                       f"target lost: {reason}; set a new target (set_target, a click or a "
                       "detection)")


def _stamp_text(stamp_ns: int) -> str:
    return f"{stamp_ns // 1_000_000_000}.{stamp_ns % 1_000_000_000:09d}"
