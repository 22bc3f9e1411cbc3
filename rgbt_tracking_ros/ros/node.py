"""The RGB-thermal tracker as a ROS 2 lifecycle node.

The node holds no tracking logic; it wires the core to topics:

* configure: read and check the parameters, load the model, choose the device (with the
  fallback policy), warm up, create the (inactive) publishers;
* activate: subscribe both cameras (pairing.py), start the services, the click and detection
  inputs, the timers and the one inference worker;
* deactivate: stop all of that and free cached GPU memory; cleanup: drop the model.

Threads: image callbacks only convert and pair, and put the newest pair into a one-slot
mailbox; the worker thread runs the model on whatever pair is newest when it is free (pairs
replaced before it took them are counted as stale). Control callbacks (services, clicks,
detections, timers) run in their own callback group and only post requests to the tracking
session, which the worker applies. Nothing a camera, a caller or the model does is allowed to
end the process: every failure is logged (rate-limited) and reported on /diagnostics.

Run: ``python -m rgbt_tracking_ros.ros.node --ros-args --params-file params.yaml``.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any

import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile

from rgbt_tracking_ros.ros import messages
from rgbt_tracking_ros.ros.device import resolve_device
from rgbt_tracking_ros.ros.diagnostics import (
    Snapshot,
    WorkerStats,
    diagnostic_array,
    evaluate,
)
from rgbt_tracking_ros.ros.mailbox import LatestSlot
from rgbt_tracking_ros.ros.pairing import PairingInput, create_pairing
from rgbt_tracking_ros.ros.parameters import (
    NodeParameters,
    ParameterError,
    declare_parameters,
    parse_parameters,
    read_parameters,
)
from rgbt_tracking_ros.ros.session import (
    Frames,
    Mode,
    Outcome,
    State,
    TargetRequest,
    TrackingSession,
)
from rgbt_tracking_ros.sync import Pair, stamp_ns
from rgbt_tracking_ros.tracker import validate_box

NODE_NAME = "rgbt_tracker"
HISTORY_PAIRS = 30  # recent pairs kept so a set_target/click/detection stamp finds its frame
_WORKER_POLL_S = 0.1
_LOG_PERIOD_S = 5.0
_SUCCESS = TransitionCallbackReturn.SUCCESS
_FAILURE = TransitionCallbackReturn.FAILURE


class RGBTTrackerNode(LifecycleNode):
    """Single-object RGB-T tracking on paired camera images; see the module docstring."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._parameter_errors = declare_parameters(self)
        self._control_group = MutuallyExclusiveCallbackGroup()
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._params: NodeParameters | None = None
        self._tracker: Any = None
        self._device = ""
        self._model_name = ""
        self._outputs: dict[str, Any] = {}
        self._pairing: PairingInput | None = None
        self._session: TrackingSession | None = None
        self._mailbox: LatestSlot[Frames] = LatestSlot()
        self._history: deque[Frames] = deque(maxlen=HISTORY_PAIRS)
        self._history_lock = threading.Lock()
        self._entities: list[tuple[str, Any]] = []
        self._worker: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self._stats = WorkerStats()
        self._traceback_logged = False
        self._detections: Any = None
        self._silent: set[str] = set()
        self._activated_at = 0.0
        self._diag_time = 0.0
        self._diag_base = (0, 0, 0, 0)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Configure and activate now when the autostart parameter is true."""
        if not self.get_parameter("autostart").value:
            self.get_logger().info("autostart is false: waiting for lifecycle transitions")
            return
        if self.trigger_configure() == _SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as error:  # noqa: BLE001 - a failed configure must not end the process
            expected = isinstance(error, (ValueError, KeyError, OSError))
            text = error.args[0] if isinstance(error, KeyError) and error.args else error
            self.get_logger().error(f"configure failed: {text}")
            if not expected:  # a bug rather than a bad setting: show where
                self.get_logger().error(traceback.format_exc())
            self._release_model()
            return _FAILURE
        return _SUCCESS

    def _configure(self) -> None:
        import torch

        from rgbt_tracking_ros.defaults import DEFAULT_MODEL
        from rgbt_tracking_ros.models.loading import load_model, shipped_weights
        from rgbt_tracking_ros.models.selective_scan import active_backend
        from rgbt_tracking_ros.tracker import RGBTTracker

        if self._parameter_errors:
            raise ParameterError("invalid parameters: " + "; ".join(
                self._parameter_errors.values()))
        params, warnings = parse_parameters(read_parameters(self))
        for warning in warnings:
            self.get_logger().warning(warning)
        choice = resolve_device(params.device, params.device_fallback, params.half)
        for warning in choice.warnings:
            self.get_logger().warning(warning)
        model_name = params.model or (None if params.checkpoint else DEFAULT_MODEL)
        start = time.perf_counter()
        model = load_model(model_name, params.checkpoint or None)
        weights = params.checkpoint or shipped_weights(model.config)
        if not weights:
            self.get_logger().warning(
                f"checkpoint is empty: {model_name} runs with its INITIAL, UNTRAINED weights "
                "and will not track anything; set the checkpoint parameter")
        tracker = RGBTTracker(model, params.tracker_config(choice.device, choice.half))
        loaded = time.perf_counter()
        _warm_up(tracker)
        warmed = time.perf_counter()
        self._params, self._tracker, self._device = params, tracker, choice.device
        self._model_name = str(getattr(model, "config", {}).get("name", type(model).__name__))
        self._create_publishers()
        cuda = torch.version.cuda or "none"
        gpu = f" ({torch.cuda.get_device_name(tracker.device)})" if choice.device != "cpu" else ""
        self.get_logger().info(
            f"configured: model {self._model_name} from {weights or '(initial weights)'}"
            f" on {choice.device}{gpu}{' fp16' if choice.half else ''}; torch {torch.__version__},"
            f" CUDA {cuda}, selective scan {active_backend(tracker.device)}; loaded in "
            f"{loaded - start:.2f} s, warm-up forward {1e3 * (warmed - loaded):.0f} ms")

    def _create_publishers(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image

        from rgbt_tracking_ros.msg import TrackedObject

        reliable = QoSProfile(depth=10)
        self._outputs = {
            "tracked": self.create_lifecycle_publisher(TrackedObject, "tracked_object", reliable),
            "annotated": self.create_lifecycle_publisher(Image, "annotated_image",
                                                         QoSProfile(depth=2)),
            "diagnostics": self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics",
                                                           reliable),
        }
        if messages.vision_msgs_available():
            from vision_msgs.msg import Detection2DArray

            self._outputs["detections"] = self.create_lifecycle_publisher(
                Detection2DArray, "detections", reliable)
        else:
            self.get_logger().info("vision_msgs is not installed: no detections output")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the publishers before any pair arrives
        if result != _SUCCESS:
            return result
        try:
            self._activate()
        except Exception as error:  # noqa: BLE001 - stay up, report, and stay inactive
            self.get_logger().error(f"activate failed: {error}\n{traceback.format_exc()}")
            self._stop_activity()
            super().on_deactivate(state)
            return _FAILURE
        return _SUCCESS

    def _activate(self) -> None:
        params = self._params
        if params is None or self._tracker is None:
            raise RuntimeError("activate before a successful configure")
        self._session = TrackingSession(self._tracker, params.target_id)
        self._mailbox = LatestSlot()
        self._stats = WorkerStats()
        self._traceback_logged = False
        self._silent = set()
        self._detections = None
        self._pairing, why = create_pairing(self, params, self._on_pair, self._image_group)
        self.get_logger().info(why)
        self._pairing.start()
        self._add_services()
        self._add_target_inputs(params)
        self._activated_at = self._diag_time = time.monotonic()
        self._diag_base = (0, 0, 0, 0)
        self._entities.append(("timer", self.create_timer(
            params.diagnostics_period, self._publish_diagnostics,
            callback_group=self._control_group)))
        self._entities.append(("timer", self.create_timer(
            min(max(params.camera_timeout / 4, 0.02), 1.0), self._watch_cameras,
            callback_group=self._control_group)))
        self._worker_stop.clear()
        self._worker = threading.Thread(target=self._work, name="rgbt_tracker_worker",
                                        daemon=True)
        self._worker.start()
        if params.initial_box:
            box = tuple(params.initial_box)
            self._session.request(TargetRequest(box, params.target_id, "initial_box"))
            self.get_logger().info(f"tracking initial_box {list(box)} from the first image pair")
        cameras = self._pairing.cameras
        self.get_logger().info(
            f"active: {cameras['rgb'].label} + {cameras['thermal'].label}, image QoS "
            f"{params.image_qos}, slop {params.slop:g} s, queue {params.queue_size}")

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_deactivate(state)
        self._stop_activity()
        self._empty_cuda_cache()
        self.get_logger().info("deactivated: inputs, services and worker stopped")
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_model()
        self.get_logger().info("cleaned up: model released")
        return _SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        self._release_model()
        return _SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        self._release_model()
        return _SUCCESS

    def _stop_activity(self) -> None:
        """Undo activate: inputs first (no new pairs), then the worker."""
        if self._pairing is not None:
            self._pairing.stop()
            self._pairing = None
        for kind, entity in self._entities:
            if kind == "timer":
                self.destroy_timer(entity)
            elif kind == "service":
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self._entities.clear()
        self._worker_stop.set()
        self._mailbox.close()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            if self._worker.is_alive():
                self.get_logger().error("the inference worker did not stop within 30 s")
            self._worker = None
        self._mailbox.clear()
        with self._history_lock:
            self._history.clear()
        if self._tracker is not None:
            self._tracker.reset()  # frees the template tensors
        self._session = None

    def _release_model(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        self._tracker = None
        self._params = None
        self._empty_cuda_cache()

    def _empty_cuda_cache(self) -> None:
        import torch

        if self._device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---------------------------------------------------------------- images and worker

    def _on_pair(self, pair: Pair) -> None:
        """Image-callback side: keep the pair for stamp look-ups and offer it to the worker."""
        frames = Frames(pair.rgb.image, pair.thermal.image, pair.rgb.header, pair.rgb.stamp_ns,
                        pair.dt_ns)
        with self._history_lock:
            self._history.append(frames)
        self._mailbox.put(frames)

    def _work(self) -> None:
        while not self._worker_stop.is_set():
            frames = self._mailbox.take(_WORKER_POLL_S)
            session = self._session
            if frames is None or session is None:
                continue
            try:
                result = session.step(frames)
            except Exception as error:  # noqa: BLE001 - the node continues with the next pair
                self._model_failed(error)
                continue
            if result.rejected:
                self.get_logger().warning(result.rejected)
            for outcome in result.outcomes:
                self._publish(outcome)

    def _model_failed(self, error: Exception) -> None:
        text = f"{type(error).__name__}: {error}"
        self._stats.model_error(text)
        if not self._traceback_logged:
            self._traceback_logged = True
            self.get_logger().error(f"the model failed on an image pair (continuing with the "
                                    f"next pair): {text}\n{traceback.format_exc()}")
        else:
            self.get_logger().error(f"the model failed again: {text}",
                                    throttle_duration_sec=_LOG_PERIOD_S)

    def _publish(self, outcome: Outcome) -> None:
        try:
            self._outputs["tracked"].publish(messages.outcome_message(outcome))
            if "detections" in self._outputs:
                self._outputs["detections"].publish(messages.detection_array(outcome))
        except Exception as error:  # noqa: BLE001 - e.g. publishing while shutting down
            self.get_logger().error(f"publishing failed: {error!r}",
                                    throttle_duration_sec=_LOG_PERIOD_S)
            return
        latency_ns = self.get_clock().now().nanoseconds - outcome.frames.rgb_stamp_ns
        self._stats.published(1e3 * outcome.inference_s, latency_ns / 1e6)
        self._publish_annotated(outcome)

    def _publish_annotated(self, outcome: Outcome) -> None:
        """Drawn only while someone subscribes: it costs the worker a few ms per frame."""
        params, publisher = self._params, self._outputs.get("annotated")
        if params is None or publisher is None or publisher.get_subscription_count() == 0:
            return
        try:
            publisher.publish(messages.annotated_image(
                outcome, params.thermal_mode, params.thermal_value_range(),
                params.homography_matrix()))
        except Exception as error:  # noqa: BLE001 - a debug image must not stop tracking
            self.get_logger().error(f"annotated image failed: {error!r}",
                                    throttle_duration_sec=_LOG_PERIOD_S)

    # ---------------------------------------------------------------- target control

    def _add_services(self) -> None:
        from std_srvs.srv import Trigger

        from rgbt_tracking_ros.srv import SetTarget

        for name, kind, handler in (("set_target", SetTarget, self._on_set_target),
                                    ("reset", Trigger, self._on_reset),
                                    ("stop", Trigger, self._on_stop)):
            self._entities.append(("service", self.create_service(
                kind, name, handler, callback_group=self._control_group)))

    def _add_target_inputs(self, params: NodeParameters) -> None:
        reliable = QoSProfile(depth=10)
        if params.click_topic:
            from geometry_msgs.msg import Point, PointStamped

            kind = PointStamped if params.click_type == "point_stamped" else Point
            self._entities.append(("subscription", self.create_subscription(
                kind, params.click_topic, self._on_click, reliable,
                callback_group=self._control_group)))
        if not params.detection_topic:
            return
        if not messages.vision_msgs_available():
            self.get_logger().warning(
                f"detection_topic is {params.detection_topic!r} but vision_msgs is not "
                "installed: re-initialisation from detections is off")
            return
        from vision_msgs.msg import Detection2DArray

        self._entities.append(("subscription", self.create_subscription(
            Detection2DArray, params.detection_topic, self._on_detections, reliable,
            callback_group=self._control_group)))

    def _frames_at(self, stamp: Any) -> Frames | None:
        """The held pair whose RGB stamp is closest to stamp, within slop (>= 1 ms)."""
        target = stamp_ns(stamp.sec, stamp.nanosec)
        tolerance = max(self._params.slop if self._params else 0.0, 1e-3) * 1e9
        with self._history_lock:
            best = min(self._history, key=lambda f: abs(f.rgb_stamp_ns - target), default=None)
        if best is None or abs(best.rgb_stamp_ns - target) > tolerance:
            return None
        return best

    def _latest_frames(self) -> Frames | None:
        with self._history_lock:
            return self._history[-1] if self._history else None

    def _request_target(self, box: Any, target_id: str, source: str,
                        stamp: Any = None) -> tuple[bool, str]:
        """Check a box against its frame (or the newest one) and hand it to the session."""
        session, params = self._session, self._params
        if session is None or params is None:
            return False, "the node is not active"
        values = tuple(float(v) for v in box)
        if not all(math.isfinite(v) for v in values):
            return False, f"box {list(values)} contains NaN or infinity"
        frames = None
        if stamp is not None and (stamp.sec or stamp.nanosec):
            frames = self._frames_at(stamp)
        reference = frames or self._latest_frames()
        if reference is None:
            return False, (f"no image pair received yet from {params.rgb_topic} and "
                           f"{params.thermal_topic}: cannot check the box")
        height, width = reference.rgb.shape[:2]
        try:
            validate_box(values, height, width)
        except ValueError as error:
            return False, str(error)
        session.request(TargetRequest(values, target_id or params.target_id, source, frames))
        where = "its frame" if frames is not None else "the next image pair"
        return True, f"target {target_id or params.target_id!r} set to {list(values)} on {where}"

    def _on_set_target(self, request: Any, response: Any) -> Any:
        box = (request.x, request.y, request.width, request.height)
        response.success, response.message = self._request_target(
            box, request.target_id, "set_target", request.header.stamp)
        self._report(response.success, f"set_target: {response.message}")
        return response

    def _report(self, ok: bool, text: str) -> None:
        # rclpy fixes a log call site's severity on first use: one site per severity.
        if ok:
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)

    def _on_reset(self, request: Any, response: Any) -> Any:
        if self._session is None:
            response.success, response.message = False, "the node is not active"
            return response
        self._session.reset()
        response.success = True
        response.message = "target forgotten: waiting for set_target, a click or a detection"
        self.get_logger().info(f"reset: {response.message}")
        return response

    def _on_stop(self, request: Any, response: Any) -> Any:
        session = self._session
        if session is None:
            response.success, response.message = False, "the node is not active"
            return response
        last = session.status()
        session.stop()
        self._publish_stopped(last.target_id, last.box)
        response.success = True
        response.message = "tracking stopped until set_target or a click sets a target"
        self.get_logger().info(f"stop: {response.message}")
        return response

    def _publish_stopped(self, target_id: str, box: Any) -> None:
        """One STOPPED message now, in the RGB camera's frame (events have no image)."""
        from std_msgs.msg import Header

        latest = self._latest_frames()
        header = Header(stamp=self.get_clock().now().to_msg(),
                        frame_id=latest.header.frame_id if latest else "")
        msg = messages.tracked_object(header, target_id, State.STOPPED, box)
        self._outputs["tracked"].publish(msg)

    def _on_click(self, msg: Any) -> None:
        params = self._params
        if params is None:
            return
        point = getattr(msg, "point", msg)
        stamp = getattr(getattr(msg, "header", None), "stamp", None)
        box = None
        detections = self._detections
        if detections is not None:
            box = messages.detection_at(detections, point.x, point.y, params.detection_class)
        if box is None:
            box = messages.centred_box(point.x, point.y, params.click_box_size)
        ok, text = self._request_target(box, params.target_id, "click", stamp)
        self._report(ok, f"click at ({point.x:.0f}, {point.y:.0f}): {text}")

    def _on_detections(self, msg: Any) -> None:
        params, session = self._params, self._session
        if params is None or session is None:
            return
        self._detections = msg
        if not session.accepts_detection():
            return
        best = messages.best_detection(msg, params.detection_min_score, params.detection_class)
        if best is None:
            return
        box, score = best
        status = session.status()
        ok, text = self._request_target(box, status.target_id, f"detection (score {score:.2f})",
                                        msg.header.stamp)
        if ok:
            self.get_logger().info(
                f"re-initialising from a detection (score {score:.2f}) while "
                f"{status.state.name}: {text}", throttle_duration_sec=1.0)

    # ---------------------------------------------------------------- health

    def _watch_cameras(self) -> None:
        """STOPPED when a camera goes silent, named in the log; resumes when it returns."""
        pairing, params, session = self._pairing, self._params, self._session
        if pairing is None or params is None or session is None:
            return
        now = time.monotonic()
        silent = {name for name, camera in pairing.cameras.items()
                  if camera.last_arrival is not None
                  and now - camera.last_arrival > params.camera_timeout}
        for name in sorted(silent - self._silent):
            camera = pairing.cameras[name]
            self.get_logger().warning(
                f"{camera.label} sent no image for {now - camera.last_arrival:.1f} s "
                f"(camera_timeout {params.camera_timeout:g} s): state STOPPED until it returns")
        for name in sorted(self._silent - silent):
            status = session.status()
            self.get_logger().info(
                f"{pairing.cameras[name].label} is back: tracking resumes "
                f"({status.mode.value}, target {status.target_id!r})")
        if silent - self._silent:
            status = session.status()
            self._publish_stopped(status.target_id, status.box)
        self._silent = silent

    def _waiting_cameras(self) -> list[str]:
        pairing, params = self._pairing, self._params
        if pairing is None or params is None:
            return []
        if time.monotonic() - self._activated_at <= params.camera_timeout:
            return []
        return [camera.label for camera in pairing.cameras.values()
                if camera.last_arrival is None]

    def _state_text(self) -> str:
        session, pairing = self._session, self._pairing
        if session is None or pairing is None:
            return "inactive"
        if self._silent:
            names = " and ".join(sorted(self._silent))
            return f"stopped ({names} camera silent)"
        status = session.status()
        if status.state is State.STOPPED:
            return "stopped (no target)" if status.mode is Mode.WAITING else "stopped"
        return status.state.name.lower()

    def _publish_diagnostics(self) -> None:
        pairing, params, session = self._pairing, self._params, self._session
        if pairing is None or params is None or session is None:
            return
        now = time.monotonic()
        stats = pairing.stats()
        malformed = stats.malformed_rgb + stats.malformed_thermal
        base = (stats.received_rgb, stats.received_thermal, stats.paired, malformed)
        delta = [a - b for a, b in zip(base, self._diag_base)]
        sync_warning = pairing.health_warning()
        pairing.check_time_offset()  # issue 11: camera time offset from the images
        if sync_warning:
            self.get_logger().warning(sync_warning, throttle_duration_sec=10.0)
        snapshot = Snapshot(
            elapsed_s=now - self._diag_time, received_rgb=delta[0], received_thermal=delta[1],
            paired=delta[2], dropped_rgb_total=stats.dropped_rgb,
            dropped_thermal_total=stats.dropped_thermal,
            stale_pairs_total=self._mailbox.dropped,
            malformed_rgb_total=stats.malformed_rgb,
            malformed_thermal_total=stats.malformed_thermal,
            malformed_in_period=delta[3], last_malformed=stats.last_malformed,
            resets_total=stats.resets, last_pair_dt_s=stats.last_dt, times=self._stats.take(),
            model_errors_total=self._stats.model_errors_total, state=self._state_text(),
            target_id=session.status().target_id, device=self._device, model=self._model_name,
            pairing=pairing.backend, sync_warning=sync_warning,
            silent_cameras=[pairing.cameras[name].label for name in sorted(self._silent)],
            waiting_cameras=self._waiting_cameras(),
            time_offset=pairing.time_offset_values(),
            time_offset_warning=pairing.time_offset_warning())
        self._diag_time, self._diag_base = now, tuple(base)
        level, message, values = evaluate(snapshot)
        try:
            self._outputs["diagnostics"].publish(diagnostic_array(
                self.get_clock().now().to_msg(), f"{self.get_name()}: tracking", self._device,
                level, message, values))
        except Exception as error:  # noqa: BLE001 - e.g. publishing while shutting down
            self.get_logger().error(f"publishing diagnostics failed: {error!r}",
                                    throttle_duration_sec=_LOG_PERIOD_S)


def _warm_up(tracker: Any) -> None:
    """One initialise and one forward on a dummy pair, so the first real frame is not slow."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    thermal = rng.integers(20000, 30000, (128, 128), dtype=np.uint16)
    tracker.initialize(rgb, thermal, (48.0, 48.0, 32.0, 32.0))
    tracker.track(rgb, thermal)
    tracker.reset()


def main(argv: list[str] | None = None) -> int:
    """Run the node until Ctrl-C or SIGTERM, then shut it down cleanly (lifecycle shutdown,
    node destroyed, middleware closed, so no shared-memory segments are left behind)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=sys.argv if argv is None else argv,
               signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    node = RGBTTrackerNode()
    # One executor thread for the cheap callbacks: beside the inference worker, more threads
    # only fight over the GIL (measured: 4 threads made the model 20x slower on 2 cores).
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        node.start()
        while not stop.is_set() and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception as error:  # noqa: BLE001 - a failing callback must not end the node
                node.get_logger().error(f"a callback failed (the node goes on): {error!r}\n"
                                        f"{traceback.format_exc()}", throttle_duration_sec=5.0)
    finally:
        node.get_logger().info("shutting down")
        try:
            node.trigger_shutdown()
        except Exception as error:  # noqa: BLE001 - already finalized, or shutting down
            node.get_logger().debug(f"lifecycle shutdown skipped: {error}")
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
