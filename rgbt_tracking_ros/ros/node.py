"""The RGB-thermal tracker as a ROS 2 lifecycle node: only the wiring.

All tracking policy (pairing, camera silence, stream continuity, target requests, states and
their reasons, health) lives in the ROS-free runtime (rgbt_tracking_ros/runtime/); this module
converts messages, creates the ROS entities and hands work to it:

* configure: read and check the parameters, load the model, choose the device (with the
  fallback policy), warm up, create the runtime and the (inactive) publishers;
* activate: subscribe both cameras (pairing.py), start the services, the click and detection
  inputs, the timer and the one inference worker;
* deactivate: stop all of that and free cached GPU memory; the target is kept (a pause longer
  than camera_timeout makes it LOST when images return); cleanup drops the model and target;
* shutdown (from any state) ends the process; an invalid transition is answered with failure.

Threads: image callbacks only convert and hand frames to the runtime, which pairs them and
queues the pairs in a mailbox where each waits at most max_pair_wait seconds; the worker
thread runs the model on them, oldest first. Control callbacks run in their own callback group. Nothing a
camera, a caller or the model does ends the process: failures are published as states with a
reason, logged (rate-limited) and reported on /diagnostics.

Run: ``python -m rgbt_tracking_ros.ros.node --ros-args --params-file params.yaml``.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import rclpy
import rclpy.utilities
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer

from rgbt_tracking_ros.ros import messages
from rgbt_tracking_ros.ros.device import DeviceError, resolve_device
from rgbt_tracking_ros.ros.diagnostics import diagnostic_array
from rgbt_tracking_ros.ros.pairing import PairingInput, create_pairing, qos_overrides
from rgbt_tracking_ros.ros.parameters import (
    ACTIVATE,
    CONFIGURE,
    NodeParameters,
    ParameterError,
    ParamSpec,
    declare_parameters,
    parse_parameters,
    read_parameters,
)
from rgbt_tracking_ros.runtime.core import InputResult, TrackingRuntime
from rgbt_tracking_ros.runtime.session import Outcome, State, StepResult
from rgbt_tracking_ros.sync import stamp_ns

if TYPE_CHECKING:  # annotations only: the node's import does not depend on where rclpy exports them
    from rclpy.lifecycle import LifecyclePublisher

    from rgbt_tracking_ros.tracker import RGBTTracker

NODE_NAME = "rgbt_tracker"
_LOG_PERIOD_S = 5.0
_TICK_S = 0.1  # camera silence checks; diagnostics every diagnostics_period
SET_TARGET_WAIT_S = 10.0  # how long set_target waits for the worker to initialise
_SUCCESS = TransitionCallbackReturn.SUCCESS
_FAILURE = TransitionCallbackReturn.FAILURE
_UNCONFIGURED, _INACTIVE, _ACTIVE = 1, 2, 3  # lifecycle_msgs/State primary ids


class RGBTTrackerNode(LifecycleNode):
    """Single-object RGB-T tracking on paired camera images; see the module docstring."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        self._ready = False
        super().__init__(node_name, **kwargs)
        self._parameter_errors = declare_parameters(self, self._gate)
        self._control_group = MutuallyExclusiveCallbackGroup()
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._params: NodeParameters | None = None
        self._runtime: TrackingRuntime | None = None
        self._device = ""
        self._model_name = ""
        self._outputs: dict[str, LifecyclePublisher] = {}
        self._pairing: PairingInput | None = None
        self._entities: list[Timer | Service | Subscription] = []
        self._worker: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self._traceback_logged = False
        self._detections: Any = None
        self._initial_box: tuple[float, ...] = ()
        self._diag_time = 0.0
        self.finished = threading.Event()  # set by shutdown: main() ends the process
        self.exit_code = 0
        self._device_failure = False
        self._ready = True

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Configure and activate now when the autostart parameter is true."""
        if not self.get_parameter("autostart").value:
            self.get_logger().info("autostart is false: waiting for lifecycle transitions")
            return
        if self.trigger_configure() == _SUCCESS:
            self.trigger_activate()
        elif self._device_failure:
            self.exit_code = 1
            self.finished.set()

    def _LifecycleNodeMixin__on_change_state(self, req: Any, resp: Any) -> Any:
        """rclpy raises inside the service for a transition invalid in the current state,
        leaving `ros2 lifecycle set` without an answer: answer failure and log why."""
        state_id, label = self._state_machine.current_state
        transition_id = req.transition.id
        try:
            if req.transition.label:
                transition_id = self._state_machine.get_transition_by_label(
                    req.transition.label)
            # rclpy's private __change_state under its mangled name, which mypy does not model.
            result = self._LifecycleNodeMixin__change_state(transition_id)  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 - rclpy's RCLError for invalid transitions
            name = req.transition.label or f"id {req.transition.id}"
            self.get_logger().warning(
                f"lifecycle transition {name} is not valid in state {label!r}: {error}")
            resp.success = False
            return resp
        resp.success = result == _SUCCESS
        return resp

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._device_failure = False
        try:
            self._configure()
        except Exception as error:  # noqa: BLE001 - a failed configure must not end the process
            expected = isinstance(error, (ValueError, KeyError, OSError))
            text = error.args[0] if isinstance(error, KeyError) and error.args else error
            if isinstance(error, DeviceError):
                self._device_failure = True
                text = (f"{text}. To run on the CPU instead, set device_fallback:=cpu (e.g. "
                        "rgbt-track node ... -p device_fallback:=cpu) or device:=cpu")
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
        if choice.warnings:  # one warning, naming everything that changed
            self.get_logger().warning("; ".join(choice.warnings))
        model_name = params.model or (None if params.checkpoint else DEFAULT_MODEL)
        start = time.perf_counter()
        model = load_model(model_name, params.checkpoint or None)
        config: dict[str, Any] = getattr(model, "config", {})
        weights = params.checkpoint or shipped_weights(config)
        if not weights:
            self.get_logger().warning(
                f"checkpoint is empty: {model_name} runs with its INITIAL, UNTRAINED weights "
                "and will not track anything; set the checkpoint parameter")
        tracker = RGBTTracker(model, params.tracker_config(choice.device, choice.half))
        loaded = time.perf_counter()
        _warm_up(tracker)
        warmed = time.perf_counter()
        self._params, self._device = params, choice.device
        self._runtime = TrackingRuntime(tracker, params)
        self._model_name = str(config.get("name", type(model).__name__))
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

        overrides = qos_overrides()  # qos_overrides.<topic>.publisher.*
        self._outputs = {
            "tracked": self.create_lifecycle_publisher(
                TrackedObject, "tracked_object", QoSProfile(depth=10),
                qos_overriding_options=overrides),
            "annotated": self.create_lifecycle_publisher(
                Image, "annotated_image", QoSProfile(depth=2), qos_overriding_options=overrides),
            "diagnostics": self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics",
                                                           QoSProfile(depth=10)),
        }
        if messages.vision_msgs_available():
            from vision_msgs.msg import Detection2DArray

            self._outputs["detections"] = self.create_lifecycle_publisher(
                Detection2DArray, "detections", QoSProfile(depth=10),
                qos_overriding_options=overrides)
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
        runtime = self._runtime
        if runtime is None:
            raise RuntimeError("activate before a successful configure")
        # Parameters read at activate (topics, QoS, inputs) may have changed while inactive.
        params, _ = parse_parameters(read_parameters(self))
        params = _keep_configured(self._params, params)
        self._params = params
        runtime.update(params)
        runtime.params = params
        runtime.restart_inputs()
        self._traceback_logged = False
        self._detections = None
        self._pairing, why = create_pairing(self, params, runtime, self._deliver,
                                            self._image_group)
        runtime.set_labels({name: camera.label for name, camera in self._pairing.cameras.items()})
        self.get_logger().info(why)
        self._pairing.start()
        self._add_services()
        self._add_target_inputs(params)
        self._diag_time = time.monotonic()
        self._entities.append(self.create_timer(_TICK_S, self._tick, callback_group=self._control_group))
        self._worker_stop.clear()
        self._worker = threading.Thread(
            target=runtime.work, args=(self._worker_stop, self._publish_result),
            name="rgbt_tracker_worker", daemon=True)
        self._worker.start()
        status = runtime.session.status()
        self._initial_box = ()
        if params.initial_box and status.state is State.STOPPED:
            self._initial_box = tuple(params.initial_box)
            self.get_logger().info(
                f"tracking initial_box {list(self._initial_box)} from the first image pair")
        elif status.state is not State.STOPPED:
            self.get_logger().info(
                f"target {status.target_id!r} kept across deactivate ({status.state.name}); "
                "call reset or set_target to change it")
        cameras = self._pairing.cameras
        self.get_logger().info(
            f"active: {cameras['rgb'].label} + {cameras['thermal'].label}, image QoS "
            f"{params.image_qos}, slop {params.slop:g} s, queue {params.queue_size}")

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_deactivate(state)
        self._stop_activity()
        self._empty_cuda_cache()
        self.get_logger().info("deactivated: inputs, services and worker stopped; the target "
                               "is kept")
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_model()
        self.get_logger().info("cleaned up: model and target released")
        return _SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        self._release_model()
        self.get_logger().info("shut down: the process ends")
        self.finished.set()
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
        for entity in self._entities:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            elif isinstance(entity, Service):
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self._entities.clear()
        self._worker_stop.set()
        runtime = self._runtime
        if runtime is not None:
            runtime.mailbox.close()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            if self._worker.is_alive():
                self.get_logger().error("the inference worker did not stop within 30 s")
            self._worker = None

    def _release_model(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        self._runtime = None
        self._params = None
        self._empty_cuda_cache()

    def _empty_cuda_cache(self) -> None:
        import torch

        if self._device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---------------------------------------------------------------- parameters

    def _lifecycle_state(self) -> int:
        return self._state_machine.current_state[0]

    def _gate(self, changes: list[tuple[ParamSpec, Any]]) -> str | None:
        """Refuse what the current state does not allow; apply live changes at once."""
        if not getattr(self, "_ready", False):
            return None  # declarations
        state = self._lifecycle_state()
        for spec, _ in changes:
            if spec.when == CONFIGURE and state != _UNCONFIGURED:
                return (f"{spec.name} is read at configure and cannot change now: deactivate "
                        "and clean up the node, set it, then configure and activate")
            if spec.when == ACTIVATE and state == _ACTIVE:
                return (f"{spec.name} is read at activate and cannot change while active: "
                        "deactivate, set it, then activate")
        values = read_parameters(self)
        values.update({spec.name: value for spec, value in changes})
        try:
            params, _ = parse_parameters(values)
        except ParameterError as error:
            if state == _UNCONFIGURED:
                return None  # configure reports every problem
            return str(error)
        runtime = self._runtime
        if runtime is not None and self._params is not None:
            self._params = _keep_configured(self._params, params)
            notes = runtime.update(self._params)
            for note in notes:
                self.get_logger().info(note)
        return None

    # ---------------------------------------------------------------- inputs and worker

    def _deliver(self, result: InputResult) -> None:
        """Input side: publish the runtime's events, log its notes, start initial_box."""
        for note in result.notes:
            self.get_logger().warning(note, throttle_duration_sec=1.0)
        for event in result.events:
            self._publish_event(event)
        runtime = self._runtime
        if self._initial_box and runtime is not None and runtime.history.latest() is not None:
            box, self._initial_box = self._initial_box, ()
            request = runtime.request_target(box, "", "initial_box")
            if isinstance(request, str):
                self.get_logger().error(request)

    def _publish_result(self, result: StepResult) -> None:
        """Worker side: log refusals and model errors, publish every outcome."""
        if result.rejected:
            self.get_logger().warning(result.rejected)
        if result.model_error is not None:
            self._model_failed(result.model_error)
        for outcome in result.outcomes:
            self._publish(outcome)

    def _model_failed(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"
        if not self._traceback_logged:
            self._traceback_logged = True
            trace = "".join(traceback.format_exception(error))
            self.get_logger().error(f"the model failed on an image pair (published as ERROR; "
                                    f"continuing with the next pair): {text}\n{trace}")
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
        runtime = self._runtime
        if runtime is not None and outcome.frames is not None:
            latency_ns = self.get_clock().now().nanoseconds - outcome.frames.rgb_stamp_ns
            runtime.published(outcome, latency_ns / 1e6)
        self._publish_annotated(outcome)

    def _publish_event(self, outcome: Outcome) -> None:
        """A state change between images (a camera silent, an interruption, stop): stamped
        now, in the RGB camera's frame."""
        from std_msgs.msg import Header

        runtime = self._runtime
        latest = runtime.history.latest() if runtime is not None else None
        header = Header(stamp=self.get_clock().now().to_msg(),
                        frame_id=latest.header.frame_id if latest else "")
        msg = messages.tracked_object(header, outcome.target_id, outcome.state, outcome.box,
                                      outcome.confidence, outcome.age,
                                      outcome.frames_since_seen, 0, outcome.reason)
        try:
            self._outputs["tracked"].publish(msg)
        except Exception as error:  # noqa: BLE001 - e.g. publishing while shutting down
            self.get_logger().error(f"publishing failed: {error!r}",
                                    throttle_duration_sec=_LOG_PERIOD_S)

    def _publish_annotated(self, outcome: Outcome) -> None:
        """Drawn only while someone subscribes: it costs the worker a few ms per frame."""
        params, publisher = self._params, self._outputs.get("annotated")
        if (params is None or publisher is None or outcome.frames is None
                or publisher.get_subscription_count() == 0):
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
            self._entities.append(self.create_service(kind, name, handler, callback_group=self._control_group))

    def _add_target_inputs(self, params: NodeParameters) -> None:
        reliable = QoSProfile(depth=10)
        if params.click_topic:
            from geometry_msgs.msg import Point, PointStamped

            kind = PointStamped if params.click_type == "point_stamped" else Point
            self._entities.append(self.create_subscription(
                kind, params.click_topic, self._on_click, reliable,
                callback_group=self._control_group))
        if not params.detection_topic:
            return
        if not messages.vision_msgs_available():
            self.get_logger().warning(
                f"detection_topic is {params.detection_topic!r} but vision_msgs is not "
                "installed: re-initialisation from detections is off")
            return
        from vision_msgs.msg import Detection2DArray

        self._entities.append(self.create_subscription(
            Detection2DArray, params.detection_topic, self._on_detections, reliable,
            callback_group=self._control_group))

    def _request_target(self, box: Sequence[float], target_id: str, source: str, stamp: Any = None,
                        wait_s: float = 0.0) -> tuple[bool, str]:
        """Hand a box to the runtime; with wait_s, wait for the worker's answer."""
        runtime = self._runtime
        if runtime is None or self._pairing is None:
            return False, "the node is not active"
        ns = stamp_ns(stamp.sec, stamp.nanosec) if stamp is not None else 0
        request = runtime.request_target(box, target_id, source, ns)
        if isinstance(request, str):
            return False, request
        if wait_s <= 0:
            return True, f"{source} target {request.target_id!r} queued"
        return request.wait(wait_s)

    def _on_set_target(self, request: Any, response: Any) -> Any:
        box = (request.x, request.y, request.width, request.height)
        response.success, response.message = self._request_target(
            box, request.target_id, "set_target", request.header.stamp, SET_TARGET_WAIT_S)
        self._report(response.success, f"set_target: {response.message}")
        return response

    def _report(self, ok: bool, text: str) -> None:
        # rclpy fixes a log call site's severity on first use: one site per severity.
        if ok:
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)

    def _on_reset(self, request: Any, response: Any) -> Any:
        if self._runtime is None or self._pairing is None:
            response.success, response.message = False, "the node is not active"
            return response
        self._runtime.session.reset()
        response.success = True
        response.message = "target forgotten: waiting for set_target, a click or a detection"
        self.get_logger().info(f"reset: {response.message}")
        return response

    def _on_stop(self, request: Any, response: Any) -> Any:
        runtime = self._runtime
        if runtime is None or self._pairing is None:
            response.success, response.message = False, "the node is not active"
            return response
        last = runtime.session.status()
        runtime.session.stop()
        self._publish_event(Outcome(None, State.STOPPED, last.box, 0.0, last.age,
                                    last.frames_since_seen, last.target_id, 0.0,
                                    "stopped on request"))
        response.success = True
        response.message = "tracking stopped until set_target or a click sets a target"
        self.get_logger().info(f"stop: {response.message}")
        return response

    def _on_click(self, msg: Any) -> None:
        runtime = self._runtime
        if runtime is None or self._pairing is None:
            return
        point = getattr(msg, "point", msg)
        stamp = getattr(getattr(msg, "header", None), "stamp", None)
        ns = stamp_ns(stamp.sec, stamp.nanosec) if stamp is not None else 0
        request = runtime.click(point.x, point.y, ns, self._detections)
        if isinstance(request, str):
            ok, text = False, request
        else:
            ok, text = True, f"{request.source} target {request.target_id!r} queued"
        self._report(ok, f"click at ({point.x:.0f}, {point.y:.0f}): {text}")

    def _on_detections(self, msg: Any) -> None:
        runtime = self._runtime
        if runtime is None or self._pairing is None:
            return
        self._detections = msg
        stamp = msg.header.stamp
        request = runtime.detections(msg, stamp_ns(stamp.sec, stamp.nanosec))
        if isinstance(request, str):
            self.get_logger().warning(request, throttle_duration_sec=5.0)
        elif request is not None:
            self.get_logger().info(f"re-initialising from a {request.source}",
                                   throttle_duration_sec=1.0)

    # ---------------------------------------------------------------- health

    def _tick(self) -> None:
        """Camera silence (events and log lines) and, every diagnostics_period, health."""
        runtime, pairing, params = self._runtime, self._pairing, self._params
        if runtime is None or pairing is None or params is None:
            return
        result, silent, back = runtime.check_cameras()
        for note in result.notes:
            self.get_logger().warning(note)
        for event in result.events:
            self._publish_event(event)
        for note in runtime.check_time_offset().notes:  # camera offset, when an estimate is due
            self.get_logger().info(note, throttle_duration_sec=_LOG_PERIOD_S)
        now = time.monotonic()
        if now - self._diag_time >= params.diagnostics_period:
            self._diag_time = now
            self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        runtime, pairing = self._runtime, self._pairing
        if runtime is None or pairing is None:
            return
        stats = pairing.stats()
        sync_warning = pairing.health_warning()
        if sync_warning:
            self.get_logger().warning(sync_warning, throttle_duration_sec=10.0)
        level, message, values = runtime.health(
            received=(stats.received_rgb, stats.received_thermal),
            malformed=(stats.malformed_rgb, stats.malformed_thermal),
            last_malformed=stats.last_malformed, device=self._device, model=self._model_name,
            backend=pairing.backend, sync_warning=sync_warning,
            pair_counts=(stats.paired, stats.dropped_rgb, stats.dropped_thermal, stats.resets,
                         stats.last_dt))
        if level:
            self.get_logger().warning(f"diagnostics: {message}",
                                      throttle_duration_sec=_LOG_PERIOD_S)
        try:
            self._outputs["diagnostics"].publish(diagnostic_array(
                self.get_clock().now().to_msg(), f"{self.get_name()}: tracking", self._device,
                level, message, values))
        except Exception as error:  # noqa: BLE001 - e.g. publishing while shutting down
            self.get_logger().error(f"publishing diagnostics failed: {error!r}",
                                    throttle_duration_sec=_LOG_PERIOD_S)


def _keep_configured(configured: NodeParameters | None,
                     current: NodeParameters) -> NodeParameters:
    """The current values, except those read at configure, which keep their configured value."""
    from dataclasses import replace

    from rgbt_tracking_ros.runtime.parameters import SPECS

    if configured is None:
        return current
    kept = {spec.name: getattr(configured, spec.name) for spec in SPECS
            if spec.when == CONFIGURE}
    return replace(current, **kept)


def _warm_up(tracker: RGBTTracker) -> None:
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
        while not stop.is_set() and not node.finished.is_set() and rclpy.utilities.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception as error:  # noqa: BLE001 - a failing callback must not end the node
                node.get_logger().error(f"a callback failed (the node goes on): {error!r}\n"
                                        f"{traceback.format_exc()}", throttle_duration_sec=5.0)
    finally:
        node.get_logger().info("shutting down")
        if not node.finished.is_set():
            try:
                node.trigger_shutdown()
            except Exception as error:  # noqa: BLE001 - already finalized, or shutting down
                node.get_logger().debug(f"lifecycle shutdown skipped: {error}")
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        rclpy.utilities.try_shutdown()
    return node.exit_code


if __name__ == "__main__":
    sys.exit(main())
