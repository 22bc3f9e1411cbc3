"""The target state the node's control callbacks and its inference worker share.

Services, clicks and detections only *request* changes; the one worker thread applies them on
the next image pair, so the model runs on a single thread. A change that arrives while the
worker is inside the model makes the worker discard that result: a reply of ``stop`` is never
followed by a TRACKING message computed before it.
"""
from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rgbt_tracking_ros.tracker import TrackState, validate_box


class State(enum.IntEnum):
    """The TrackedObject states, with the message's constant values."""

    NEW = 0
    TRACKING = 1
    LOST = 2
    STOPPED = 3


class Mode(enum.Enum):
    WAITING = "waiting"    # no target: a STOPPED message per pair; detections may set one
    STOPPED = "stopped"    # stopped on request: silent until a target is set explicitly
    TRACKING = "tracking"


@dataclass(frozen=True)
class Frames:
    """One image pair as arrays, with the RGB image's header (copied into every output)."""

    rgb: np.ndarray
    thermal: np.ndarray
    header: Any
    rgb_stamp_ns: int
    pair_dt_ns: int


@dataclass(frozen=True)
class TargetRequest:
    """A new target; initialised on `frames` when given (a held pair), else on the next pair."""

    box: tuple[float, float, float, float]
    target_id: str
    source: str
    frames: Frames | None = None


@dataclass(frozen=True)
class Outcome:
    """What the node publishes for one image pair."""

    frames: Frames
    state: State
    box: np.ndarray | None
    confidence: float
    age: int
    frames_since_seen: int
    target_id: str
    inference_s: float
    reason: str = ""  # the tracker's TrackResult.reason: why the state is what it is


@dataclass(frozen=True)
class StepResult:
    outcomes: list[Outcome]
    rejected: str | None = None  # why a requested box could not be used


@dataclass(frozen=True)
class Status:
    mode: Mode
    state: State
    target_id: str
    box: np.ndarray | None
    age: int
    frames_since_seen: int


class TrackingSession:
    """Target mode and requests around one RGBTTracker; thread-safe."""

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

    def request(self, request: TargetRequest) -> None:
        with self._lock:
            self._generation += 1
            self._pending = request

    def reset(self) -> None:
        """Forget the target and keep running: STOPPED messages, detections may set a new one."""
        self._forget(Mode.WAITING)

    def stop(self) -> None:
        """Forget the target and go quiet until set_target or a click sets one."""
        self._forget(Mode.STOPPED)

    def _forget(self, mode: Mode) -> None:
        with self._lock:
            self._generation += 1
            self._pending = None
            self._mode = mode
            self._last = None

    def status(self) -> Status:
        with self._lock:
            last = self._last
            if last is None:
                return Status(self._mode, State.STOPPED, self._target_id, None, 0, 0)
            return Status(self._mode, last.state, self._target_id, last.box, last.age,
                          last.frames_since_seen)

    def accepts_detection(self) -> bool:
        """True while a detection may re-initialise: waiting for a target, or LOST."""
        with self._lock:
            if self._pending is not None:
                return False
            lost = self._last is not None and self._last.state is State.LOST
            return self._mode is Mode.WAITING or (self._mode is Mode.TRACKING and lost)

    def step(self, frames: Frames) -> StepResult:
        """Apply a pending request, then track; called by the worker thread only."""
        with self._lock:
            generation, request = self._generation, self._pending
            self._pending = None
            mode, target_id = self._mode, self._target_id
        outcomes: list[Outcome] = []
        rejected = None
        track_current = mode is Mode.TRACKING
        if request is not None:
            init_frames = request.frames or frames
            try:
                box = validate_box(request.box, *init_frames.rgb.shape[:2])
            except ValueError as error:
                rejected = f"{request.source} box rejected: {error}"
            else:
                start = self._clock()
                self._tracker.initialize(init_frames.rgb, init_frames.thermal, box)
                outcomes.append(Outcome(init_frames, State.NEW, box, 1.0, 0, 0,
                                        request.target_id, self._clock() - start))
                mode, target_id = Mode.TRACKING, request.target_id
                # Initialised on a held, older pair: the current one still needs tracking.
                track_current = request.frames is not None
        if track_current:
            outcomes.append(self._track(frames, target_id))
        elif mode is Mode.WAITING:
            outcomes.append(Outcome(frames, State.STOPPED, None, 0.0, 0, 0, target_id, 0.0))
        with self._lock:
            if self._generation != generation:
                return StepResult([], rejected)
            self._mode, self._target_id = mode, target_id
            if outcomes:
                self._last = outcomes[-1]
        return StepResult(outcomes, rejected)

    def _track(self, frames: Frames, target_id: str) -> Outcome:
        start = self._clock()
        result = self._tracker.track(frames.rgb, frames.thermal)
        elapsed = self._clock() - start
        return Outcome(frames, State.LOST if result.state is TrackState.LOST else State.TRACKING, result.box,
                       float(result.confidence), int(self._tracker.age),
                       int(result.frames_since_seen), target_id, elapsed, result.reason)
