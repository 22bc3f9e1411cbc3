"""The tracking runtime: the whole policy between camera frames and published states, without
ROS. The node (ros/node.py) only converts messages and wires callbacks to it; `bag evaluate`
and the demo's scoring drive the same object, so they pair and decide states exactly as the
node does.

Threads: ``image``/``unusable``/``pair``/``check_cameras``/``request_target`` are called from
the input side (the node's executor thread); :meth:`work` runs on one worker thread (the only
thread that runs the model) and takes the pairs from a mailbox where each waits at most
``max_pair_wait`` seconds (runtime/mailbox.py).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rgbt_tracking_ros.runtime.health import Snapshot, WorkerStats, evaluate
from rgbt_tracking_ros.runtime.inputs import CameraWatch, Continuity, Pairing
from rgbt_tracking_ros.runtime.mailbox import PairMailbox
from rgbt_tracking_ros.runtime.parameters import SPECS_BY_NAME, NodeParameters
from rgbt_tracking_ros.runtime.session import (
    Frames,
    Mode,
    Outcome,
    State,
    StepResult,
    TargetRequest,
    TrackingSession,
)
from rgbt_tracking_ros.runtime.targets import (
    FrameHistory,
    best_detection,
    check_box,
    click_box,
    find_frames,
)
from rgbt_tracking_ros.sync import Pair
from rgbt_tracking_ros.timing.monitor import OffsetMonitor

if TYPE_CHECKING:  # the tracker package imports torch; only its box type is needed here
    from rgbt_tracking_ros.tracker.geometry import BoxLike

_WORKER_POLL_S = 0.1


@dataclass(frozen=True)
class ImageFrame:
    """A converted image: the original header (copied into outputs) and the pixels."""

    header: Any
    image: Any
    stamp_ns: int


@dataclass
class InputResult:
    """What an input call produced: events to publish now (LOST/STOPPED with a reason) and
    lines for the log."""

    events: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def frames_of(pair: Pair) -> Frames:
    """The runtime's frames of a pair of `ImageFrame`s (what the runtime's pairer holds)."""
    rgb, thermal = pair.rgb, pair.thermal
    if not (isinstance(rgb, ImageFrame) and isinstance(thermal, ImageFrame)):
        raise TypeError(f"a pair of ImageFrames expected, got {type(rgb).__name__} and {type(thermal).__name__}")
    return Frames(rgb.image, thermal.image, rgb.header, pair.rgb_stamp_ns, pair.dt_ns)


class TrackingRuntime:
    """Pairing, camera silence, stream continuity, target requests, states and counters."""

    def __init__(self, tracker: Any, params: NodeParameters,
                 labels: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sink: Callable[[Frames], Any] | None = None) -> None:
        """sink receives every accepted pair; default: the worker's mailbox (pairs wait up
        to max_pair_wait). Offline evaluation passes list.append to track every pair."""
        self.params = params
        self._sink = sink
        self._clock = clock
        self.labels = labels or {"rgb": "rgb camera", "thermal": "thermal camera"}
        self.session = TrackingSession(tracker, params.target_id)
        self.history = FrameHistory()
        self.cameras = CameraWatch(self.labels, clock())
        self.pairing = Pairing(params.pairing_config())
        self.time_offset = _offset_monitor(params)
        self.continuity = Continuity(params.camera_timeout, params.jump_back_tolerance)
        self.mailbox: PairMailbox[Frames] = self._new_mailbox()
        self.stats = WorkerStats()
        self._input_lock = threading.Lock()  # continuity, history and interruptions in order
        self._period_base = (0, 0, 0, 0, 0)
        self._period_time = clock()

    def _new_mailbox(self) -> PairMailbox[Frames]:
        return PairMailbox(self.params.max_pair_wait, self.params.queue_size, self._clock)

    def set_labels(self, labels: dict[str, str]) -> None:
        """Names of the cameras in reasons and diagnostics (e.g. with their topics)."""
        self.labels = dict(labels)
        self.cameras.labels = dict(labels)

    def restart_inputs(self) -> None:
        """Fresh pairing, offset estimate, camera watch and mailbox (activate); the target,
        the history and the continuity of stamps are kept, so a long pause marks a tracked
        target LOST."""
        self.pairing = Pairing(self.params.pairing_config())
        self.time_offset = _offset_monitor(self.params)
        self.cameras = CameraWatch(self.labels, self._clock())
        self.mailbox = self._new_mailbox()
        self._period_base = (0, 0, 0, 0, 0)
        self._period_time = self._clock()

    # ------------------------------------------------------------------ inputs

    def image(self, camera: str, frame: ImageFrame) -> InputResult:
        """A usable frame of one camera: paired with the package's StampPairer (and seen by
        the camera offset estimate)."""
        self.cameras.arrived(camera, self._clock(), True)
        self.time_offset.add(camera, frame.stamp_ns, frame.image)
        pairs, reset = self.pairing.add(camera, frame.stamp_ns, frame)
        result = InputResult()
        if reset:
            result.notes.append(f"pairing reset: {reset}; waiting frames were dropped")
            with self._input_lock:
                self.continuity.forget()
                self._interrupt(reset, result)
        for pair in pairs:
            self._accept(frames_of(pair), result)
        return result

    def flush(self, end_ns: int) -> InputResult:
        """End of a recording: settle the frames still waiting as if both cameras sent one
        more frame at end_ns (the node would pair them on its next frames)."""
        sentinel = ImageFrame(None, None, end_ns)
        result = InputResult()
        for camera in ("rgb", "thermal"):
            pairs, _ = self.pairing.add(camera, end_ns, sentinel)
            for pair in pairs:
                if pair.rgb is not sentinel and pair.thermal is not sentinel:
                    self._accept(frames_of(pair), result)
        return result

    def observe(self, camera: str, stamp_ns: int, image: Any) -> None:
        """A frame paired elsewhere (message_filters), for the camera offset estimate only;
        worth converting while ``time_offset.collecting``."""
        self.time_offset.add(camera, stamp_ns, image)

    def check_time_offset(self) -> InputResult:
        """Estimate the cameras' stamp offset from the images when due (every few seconds of
        stamps: call it on a timer or after each frame); with time_offset_estimation 'apply'
        the pairer's offsets move to the estimate. Notes say what changed or failed."""
        result = InputResult()
        try:
            correction = self.time_offset.update()
        except Exception as error:  # noqa: BLE001 - an estimate must never stop the tracker
            result.notes.append(f"camera time offset estimate failed: {error!r}")
            return result
        if correction is not None:
            self.pairing.set_offsets(correction.rgb_offset, correction.thermal_offset)
            estimate = correction.estimate
            result.notes.append(
                f"camera time offset from the images: thermal stamps {estimate.offset_ms:.1f} ms "
                f"after RGB (correlation {estimate.correlation:.2f}); thermal_offset set to "
                f"{correction.thermal_offset:.4f}")
        return result

    def unusable(self, camera: str, problem: str) -> None:
        """A frame that could not be converted: counted; it does not keep the camera alive."""
        self.cameras.arrived(camera, self._clock(), False, problem)

    def pair(self, frames: Frames) -> InputResult:
        """A pair formed elsewhere (message_filters), checked and handed to the worker."""
        result = InputResult()
        self._accept(frames, result)
        return result

    def _accept(self, frames: Frames, result: InputResult) -> None:
        with self._input_lock:
            why = self.continuity.check(frames.rgb_stamp_ns)
            if why:
                self._interrupt(why, result)
            self.history.append(frames)
        (self._sink or self.mailbox.put)(frames)

    def _interrupt(self, reason: str, result: InputResult) -> None:
        outcome = self.session.interrupt(reason)
        if outcome is not None:
            result.events.append(outcome)
            result.notes.append(f"target {outcome.target_id!r} LOST: {reason}")

    def check_cameras(self) -> tuple[InputResult, list[str], list[str]]:
        """Silence check (call it on a timer): events to publish, cameras silent and back."""
        result = InputResult()
        change = self.cameras.check(self._clock(), self.params.camera_timeout)
        for name in change.silent:
            reason = change.reasons[name]
            result.notes.append(f"{reason} (camera_timeout {self.params.camera_timeout:g} s)")
            before = len(result.events)
            self._interrupt(reason, result)
            if len(result.events) == before and self.session.status().mode is Mode.WAITING:
                result.events.append(Outcome(
                    self.history.latest(), State.STOPPED, None, 0.0, 0, 0,
                    self.session.status().target_id, 0.0, f"{reason}: nothing to track"))
        for name in change.back:
            status = self.session.status()
            result.notes.append(f"{self.labels[name]} is back: state {status.state.name}"
                                + (f" ({status.reason})" if status.reason else ""))
        return result, change.silent, change.back

    # ------------------------------------------------------------------ targets

    def request_target(self, box: BoxLike, target_id: str, source: str,
                       stamp_ns: int = 0) -> TargetRequest | str:
        """A queued request for the worker, or why it is refused (no frame, too old or in the
        future, a box too small, larger than the image or outside it)."""
        history = self.history.snapshot()
        if stamp_ns:
            frames, why = find_frames(history, stamp_ns, self.params.slop)
            if frames is None:
                return f"{source} refused: {why}"
        else:
            frames = history[-1] if history else None
            if frames is None:
                return (f"{source} refused: no image pair received yet from "
                        f"{self.labels['rgb']} and {self.labels['thermal']}")
        height, width = frames.rgb.shape[:2]
        values, why = check_box(box, height, width, self.params.min_box_size)
        if values is None:
            return f"{source} refused: {why}"
        request = TargetRequest(values, target_id or self.params.target_id, source, frames)
        self.session.request(request)
        return request

    def click(self, x: float, y: float, stamp_ns: int = 0,
              detections: Any = None) -> TargetRequest | str:
        """A click sets the target (the detection under it, else a click_box_size box)."""
        p = self.params
        box, source = click_box(x, y, p.click_box_size, detections, p.detection_class)
        return self.request_target(box, p.target_id, source, stamp_ns)

    def detections(self, array: Any, stamp_ns: int) -> TargetRequest | str | None:
        """The best detection re-initialises while waiting for a target or LOST; None when
        the array is not used (tracking, or no detection good enough)."""
        if not self.session.accepts_detection():
            return None
        best = best_detection(array, self.params.detection_min_score,
                              self.params.detection_class)
        if best is None:
            return None
        box, score = best
        return self.request_target(box, self.session.status().target_id,
                                   f"detection (score {score:.2f})", stamp_ns)

    # ------------------------------------------------------------------ worker

    def step(self, frames: Frames | None) -> StepResult:
        return self.session.step(frames)

    def work(self, stop: threading.Event, publish: Callable[[StepResult], None],
             poll_s: float = _WORKER_POLL_S) -> None:
        """The worker loop: the oldest pair still waiting (or a waiting request alone) ->
        step -> publish."""
        while not stop.is_set():
            frames = self.mailbox.take(0.0 if self.session.pending() else poll_s)
            if frames is None and not self.session.pending():
                continue
            if frames is not None:
                self.stats.took()
            result = self.step(frames)
            if result.model_error is not None:
                self.stats.model_error(f"{type(result.model_error).__name__}: "
                                       f"{result.model_error}")
            publish(result)

    def published(self, outcome: Outcome, latency_ms: float) -> None:
        if outcome.frames is not None and outcome.state is not State.STOPPED:
            self.stats.published(1e3 * outcome.inference_s, latency_ms)

    # ------------------------------------------------------------------ parameters

    def update(self, params: NodeParameters) -> list[str]:
        """Apply the live parameters that changed; returns a log line per change."""
        old, notes = self.params, []
        changed = [name for name, spec in SPECS_BY_NAME.items()
                   if spec.live and getattr(old, name) != getattr(params, name)]
        self.params = params
        for name in changed:
            notes.append(f"parameter {name} changed from {getattr(old, name)!r} to "
                         f"{getattr(params, name)!r}: in effect now")
        if "max_pair_wait" in changed:
            self.mailbox.max_wait_s = params.max_pair_wait
        if "lost_threshold" in changed:
            setter = getattr(self.session.tracker, "set_lost_threshold", None)
            if setter is not None:
                setter(params.model_lost_threshold())
        if {"slop", "rgb_offset", "thermal_offset", "jump_back_tolerance"} & set(changed):
            monitor = self.time_offset
            monitor.slop = params.slop
            if {"rgb_offset", "thermal_offset"} & set(changed):
                monitor.set_offsets(params.rgb_offset, params.thermal_offset)
            # Offsets applied from an estimate stay until offsets are set by hand.
            config = dataclasses.replace(params.pairing_config(), rgb_offset=monitor.rgb_offset,
                                         thermal_offset=monitor.thermal_offset)
            dropped = self.pairing.reconfigure(config)
            notes.append(f"pairing restarted with slop {config.slop:g} s, offsets "
                         f"{config.rgb_offset:g}/{config.thermal_offset:g} s ({dropped} "
                         "waiting frames dropped)")
        with self._input_lock:
            self.continuity.gap_s = params.camera_timeout
            self.continuity.jump_back_s = params.jump_back_tolerance
        if "target_id" in changed:
            self.session.default_target_id(params.target_id)
        return notes

    # ------------------------------------------------------------------ health

    def state_text(self) -> str:
        silent = [self.labels[name] for name in self.cameras.silent()]
        if silent:
            return f"lost ({' and '.join(silent)} silent)"
        status = self.session.status()
        if status.state is State.STOPPED:
            return "stopped (no target)" if status.mode is Mode.WAITING else "stopped"
        return status.state.name.lower()

    def snapshot(self, *, received: tuple[int, int], malformed: tuple[int, int],
                 last_malformed: str | None, device: str, model: str, backend: str,
                 sync_warning: str | None,
                 pair_counts: tuple[int, int, int, int, float | None] | None = None
                 ) -> Snapshot:
        """The period's Snapshot (since the previous call) for health.evaluate."""
        now = self._clock()
        paired, dropped_rgb, dropped_thermal, resets, last_dt = (
            pair_counts if pair_counts is not None else self.pairing.counts())
        stale = self.mailbox.dropped
        base = (received[0], received[1], paired, malformed[0] + malformed[1], stale)
        delta = [a - b for a, b in zip(base, self._period_base)]
        elapsed, self._period_time, self._period_base = now - self._period_time, now, base
        status = self.session.status()
        return Snapshot(
            elapsed_s=elapsed, received_rgb=delta[0], received_thermal=delta[1],
            paired=delta[2], dropped_rgb_total=dropped_rgb,
            dropped_thermal_total=dropped_thermal, stale_pairs_total=stale,
            malformed_rgb_total=malformed[0], malformed_thermal_total=malformed[1],
            malformed_in_period=delta[3], last_malformed=last_malformed,
            resets_total=resets, last_pair_dt_s=last_dt, times=self.stats.take(),
            model_errors_total=self.stats.model_errors_total, state=self.state_text(),
            target_id=status.target_id, device=device, model=model, pairing=backend,
            sync_warning=sync_warning,
            silent_cameras=[self.labels[name] for name in self.cameras.silent()],
            waiting_cameras=self.cameras.waiting(now, self.params.camera_timeout),
            stale_in_period=delta[4], latency_budget_s=self.params.latency_budget,
            min_answered_ratio=self.params.min_answered_ratio, reason=status.reason,
            time_offset=self.time_offset.values(),
            time_offset_warning=self.time_offset.warning(self.labels["rgb"],
                                                         self.labels["thermal"]))

    def health(self, **kwargs: Any) -> tuple[int, str, list[tuple[str, str]]]:
        return evaluate(self.snapshot(**kwargs))


def _offset_monitor(params: NodeParameters) -> OffsetMonitor:
    return OffsetMonitor(params.time_offset_estimation, params.slop, params.rgb_offset,
                         params.thermal_offset)
