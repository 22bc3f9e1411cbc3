"""Image subscriptions and conversion of the two cameras, feeding the tracking runtime.

Two back ends with the same queue_size and slop: message_filters' ApproximateTimeSynchronizer
where it is installed (robots) and allowed, else the runtime's own pairing (the package's
StampPairer, rgbt_tracking_ros/runtime/inputs.py), which also applies the per-camera offsets,
counts drops and explains poor synchronisation. Callbacks only convert and hand frames to the
runtime; what it returns (events to publish, lines to log) goes to ``deliver``. A malformed
image is counted, reported to the runtime as unusable (a camera sending only those counts as
stopped) and dropped, never raised: with message_filters an exception would leave the
synchronizer's lock held. Subscriptions take ``qos_overrides.<topic>.subscription.*``.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from rgbt_tracking_ros.codec import (
    ImageConversionError,
    compressed_to_numpy,
    image_to_numpy,
)
from rgbt_tracking_ros.ros.parameters import NodeParameters
from rgbt_tracking_ros.runtime.core import ImageFrame, InputResult, TrackingRuntime, frames_of
from rgbt_tracking_ros.runtime.inputs import rgb_array, thermal_array  # noqa: F401
from rgbt_tracking_ros.sync import Pair, stamp_ns

if TYPE_CHECKING:
    from rclpy.callback_groups import CallbackGroup
    from rclpy.node import Node
    from rclpy.qos import QoSProfile
    from rclpy.qos_overriding_options import QoSOverridingOptions
    from rclpy.subscription import Subscription

_LOG_PERIOD_S = 5.0  # throttle of repeated warnings
# Pairs below this fraction of the slower camera's messages: poorly synchronised.
_MIN_PAIR_RATIO = 1 / 3
_MIN_HEALTH_MESSAGES = 10


@dataclass(frozen=True)
class InputStats:
    """Counters since activation; dropped counts frames that never became part of a pair."""

    received_rgb: int
    received_thermal: int
    paired: int
    dropped_rgb: int
    dropped_thermal: int
    resets: int
    last_dt: float | None
    malformed_rgb: int
    malformed_thermal: int
    last_malformed: str | None


def image_qos(name: str, depth: int) -> QoSProfile:
    """The subscription QoS for image_qos; depth is queue_size."""
    from rclpy.qos import (
        QoSProfile,
        ReliabilityPolicy,
        qos_profile_sensor_data,
        qos_profile_system_default,
    )

    if name == "sensor_data":
        profile = QoSProfile(**{**_qos_fields(qos_profile_sensor_data), "depth": depth})
    elif name == "reliable":
        profile = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    elif name == "system_default":
        profile = QoSProfile(**{**_qos_fields(qos_profile_system_default), "depth": depth})
    else:
        raise ValueError(f"image_qos must be sensor_data, reliable or system_default: {name!r}")
    return profile


def _qos_fields(profile: QoSProfile) -> dict[str, Any]:
    return {"history": profile.history, "reliability": profile.reliability,
            "durability": profile.durability}


class Camera:
    """One camera's subscription settings, conversion and counters."""

    def __init__(self, name: str, topic: str, transport: str, display_topic: str) -> None:
        self.name = name
        self.compressed = transport == "compressed"
        suffix = "/compressed" if self.compressed else ""
        self.topic = topic + suffix  # as given (relative names follow namespaces and remaps)
        self.resolved_topic = display_topic + suffix
        self.label = f"{name} camera ({self.resolved_topic})"
        self._lock = threading.Lock()
        self.received = 0
        self.malformed = 0
        self.last_arrival: float | None = None

    def message_type(self) -> Any:
        from sensor_msgs.msg import CompressedImage, Image

        return CompressedImage if self.compressed else Image

    def arrived(self) -> None:
        with self._lock:
            self.received += 1
            self.last_arrival = time.monotonic()

    def convert(self, msg: Any) -> ImageFrame:
        """Pixels of a message, or ImageConversionError naming the camera and the problem."""
        try:
            image = compressed_to_numpy(msg) if self.compressed else image_to_numpy(msg)
            image = rgb_array(image) if self.name == "rgb" else thermal_array(image)
        except ImageConversionError as error:
            with self._lock:
                self.malformed += 1
            raise ImageConversionError(f"{self.label}: {error}") from None
        stamp = msg.header.stamp
        return ImageFrame(msg.header, image, stamp_ns(stamp.sec, stamp.nanosec))


class PairingInput(ABC):
    """Subscribes both cameras, converts their images and hands them to the runtime."""

    backend = ""

    def __init__(self, node: Node, params: NodeParameters, runtime: TrackingRuntime,
                 deliver: Callable[[InputResult], None], callback_group: CallbackGroup | None = None) -> None:
        self._node = node
        self._params = params
        self._runtime = runtime
        self._deliver = deliver
        self._group = callback_group
        self._qos = image_qos(params.image_qos, params.queue_size)
        self.cameras = {
            "rgb": Camera("rgb", params.rgb_topic, params.rgb_transport,
                          _display(node, params.rgb_topic)),
            "thermal": Camera("thermal", params.thermal_topic, params.thermal_transport,
                              _display(node, params.thermal_topic)),
        }
        self._last_malformed: str | None = None
        self._zero_stamp_warned = False

    @abstractmethod
    def start(self) -> None:
        """Create the subscriptions."""

    @abstractmethod
    def stop(self) -> None:
        """Destroy the subscriptions."""

    @abstractmethod
    def stats(self) -> InputStats:
        """Counters since start."""

    @abstractmethod
    def health_warning(self) -> str | None:
        """A warning naming the likely cause when pairs are far fewer than messages."""

    def _malformed(self, camera: Camera, error: ImageConversionError) -> None:
        self._runtime.unusable(camera.name, str(error))
        self._last_malformed = str(error)
        self._node.get_logger().warning(f"dropped a malformed image: {error}",
                                        throttle_duration_sec=_LOG_PERIOD_S)

    def _check_stamp(self, camera: Camera, frame: ImageFrame) -> None:
        if frame.stamp_ns == 0 and not self._zero_stamp_warned:
            self._zero_stamp_warned = True
            self._node.get_logger().warning(
                f"{camera.label} sends images with a zero stamp: pairing needs the capture time "
                "in header.stamp")


def _display(node: Node, topic: str) -> str:
    try:
        return node.resolve_topic_name(topic)
    except Exception:  # an invalid name fails later, at subscription, with rclpy's message
        return topic


class OwnPairing(PairingInput):
    """The runtime's StampPairer: closest match within slop, offsets, counters, resets."""

    backend = "stamp_pairer"

    def __init__(self, node: Node, params: NodeParameters, runtime: TrackingRuntime,
                 deliver: Callable[[InputResult], None], callback_group: CallbackGroup | None = None) -> None:
        super().__init__(node, params, runtime, deliver, callback_group)
        self._subscriptions: list[Subscription] = []

    def start(self) -> None:
        for camera in self.cameras.values():
            self._subscriptions.append(_subscribe(
                self._node, camera, partial(self._on_image, camera), self._qos, self._group))

    def stop(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions.clear()

    def _on_image(self, camera: Camera, msg: Any) -> None:
        camera.arrived()
        try:
            frame = camera.convert(msg)
        except ImageConversionError as error:
            self._malformed(camera, error)
            return
        self._check_stamp(camera, frame)
        self._deliver(self._runtime.image(camera.name, frame))

    def stats(self) -> InputStats:
        paired, dropped_rgb, dropped_thermal, resets, last_dt = self._runtime.pairing.counts()
        rgb, thermal = self.cameras["rgb"], self.cameras["thermal"]
        return InputStats(rgb.received, thermal.received, paired, dropped_rgb,
                          dropped_thermal, resets, last_dt, rgb.malformed,
                          thermal.malformed, self._last_malformed)

    def health_warning(self) -> str | None:
        return self._runtime.pairing.health_warning(
            _MIN_PAIR_RATIO, self.cameras["rgb"].resolved_topic,
            self.cameras["thermal"].resolved_topic)


def qos_overrides() -> QoSOverridingOptions:
    """Options declaring qos_overrides.<topic>.{subscription,publisher}.<policy> parameters for
    history, depth, reliability and durability (read-only: set them at start)."""
    from rclpy.qos import QoSPolicyKind
    from rclpy.qos_overriding_options import QoSOverridingOptions

    return QoSOverridingOptions(policy_kinds=(
        QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY,
        QoSPolicyKind.DURABILITY))


def _subscribe(node: Node, camera: Camera, callback: Callable[[Any], None], qos: QoSProfile,
               group: CallbackGroup | None) -> Subscription:
    return node.create_subscription(
        camera.message_type(), camera.topic, callback, qos, callback_group=group,
        qos_overriding_options=qos_overrides())


class MessageFiltersPairing(PairingInput):
    """message_filters' ApproximateTimeSynchronizer (first match within slop, no offsets)."""

    backend = "message_filters"

    def __init__(self, node: Node, params: NodeParameters, runtime: TrackingRuntime,
                 deliver: Callable[[InputResult], None], callback_group: CallbackGroup | None = None) -> None:
        super().__init__(node, params, runtime, deliver, callback_group)
        self._filters: list[Any] = []
        self._synchronizer: Any = None
        self._lock = threading.Lock()
        self._paired = 0
        self._last_dt: float | None = None
        self._health_base = (0, 0, 0)

    def start(self) -> None:
        import message_filters

        for camera in self.cameras.values():
            try:
                subscriber = message_filters.Subscriber(
                    self._node, camera.message_type(), camera.topic, qos_profile=self._qos,
                    callback_group=self._group,
                    qos_overriding_options=qos_overrides())
            except TypeError:  # an older message_filters passes no such options
                subscriber = message_filters.Subscriber(
                    self._node, camera.message_type(), camera.topic, qos_profile=self._qos,
                    callback_group=self._group)
            # Registered before the synchronizer's own input, so arrivals are counted first.
            subscriber.registerCallback(lambda msg, camera=camera: self._arrived(camera, msg))
            self._filters.append(subscriber)
        self._synchronizer = message_filters.ApproximateTimeSynchronizer(
            self._filters, self._params.queue_size, self._params.slop)
        self._synchronizer.registerCallback(self._on_synchronized)

    def _arrived(self, camera: Camera, msg: Any) -> None:
        camera.arrived()
        # The camera offset estimate needs every frame, not only paired ones.
        if self._runtime.time_offset.collecting:
            try:
                image = compressed_to_numpy(msg) if camera.compressed else image_to_numpy(msg)
                stamp = msg.header.stamp
                self._runtime.observe(camera.name, stamp_ns(stamp.sec, stamp.nanosec), image)
            except Exception:  # noqa: BLE001 - a bad image is counted when its pair is converted
                pass

    def stop(self) -> None:
        for subscriber in self._filters:
            self._node.destroy_subscription(subscriber.sub)
        self._filters.clear()
        self._synchronizer = None

    def _on_synchronized(self, rgb_msg: Any, thermal_msg: Any) -> None:
        # Runs under the synchronizer's lock: nothing may escape from here.
        watch = self._runtime.cameras
        try:
            for camera, msg in (("rgb", rgb_msg), ("thermal", thermal_msg)):
                try:
                    frame = self.cameras[camera].convert(msg)
                except ImageConversionError as error:
                    self._malformed(self.cameras[camera], error)
                    raise
                if camera == "rgb":
                    rgb = frame
                else:
                    thermal = frame
        except ImageConversionError:
            return
        except Exception as error:  # noqa: BLE001 - see above
            self._node.get_logger().error(f"image pair callback failed: {error!r}",
                                          throttle_duration_sec=_LOG_PERIOD_S)
            return
        self._check_stamp(self.cameras["rgb"], rgb)
        pair = Pair(rgb, thermal, rgb.stamp_ns, thermal.stamp_ns)
        with self._lock:
            self._paired += 1
            self._last_dt = pair.dt
        for camera in ("rgb", "thermal"):
            watch.arrived(camera, time.monotonic(), True)
        try:
            self._deliver(self._runtime.pair(frames_of(pair)))
        except Exception as error:  # noqa: BLE001 - see above
            self._node.get_logger().error(f"pair hand-off failed: {error!r}",
                                          throttle_duration_sec=_LOG_PERIOD_S)

    def stats(self) -> InputStats:
        rgb, thermal = self.cameras["rgb"], self.cameras["thermal"]
        with self._lock:
            paired, last_dt = self._paired, self._last_dt
        # message_filters does not report drops: frames not (yet) in a pair are counted.
        return InputStats(rgb.received, thermal.received, paired,
                          max(0, rgb.received - paired), max(0, thermal.received - paired),
                          0, last_dt, rgb.malformed, thermal.malformed, self._last_malformed)

    def health_warning(self) -> str | None:
        rgb, thermal = self.cameras["rgb"], self.cameras["thermal"]
        with self._lock:
            now = (rgb.received, thermal.received, self._paired)
            n_rgb, n_thermal, n_pairs = (a - b for a, b in zip(now, self._health_base))
            if n_rgb + n_thermal < _MIN_HEALTH_MESSAGES:
                return None
            self._health_base = now
        slower = min(n_rgb, n_thermal)
        if slower > 0 and n_pairs >= _MIN_PAIR_RATIO * slower:
            return None
        return (f"{rgb.resolved_topic} and {thermal.resolved_topic} do not appear to be "
                f"synchronized ({n_rgb} and {n_thermal} messages, {n_pairs} pairs since the last "
                "check): check both cameras publish, the QoS, that the stamps share a clock "
                "(constant offsets need use_message_filters:=false), slop "
                f"({self._params.slop:g} s) and queue_size ({self._params.queue_size})")


def create_pairing(node: Node, params: NodeParameters, runtime: TrackingRuntime,
                   deliver: Callable[[InputResult], None],
                   callback_group: CallbackGroup | None = None) -> tuple[PairingInput, str]:
    """The pairing back end for these parameters, and a sentence saying why it was chosen."""
    if not params.use_message_filters:
        return (OwnPairing(node, params, runtime, deliver, callback_group),
                "use_message_filters is false: pairing with the package's own pairer")
    if params.time_offset_estimation == "apply":
        return (OwnPairing(node, params, runtime, deliver, callback_group),
                "time_offset_estimation is apply and message_filters cannot shift stamps: "
                "pairing with the package's own pairer")
    if params.rgb_offset or params.thermal_offset:
        return (OwnPairing(node, params, runtime, deliver, callback_group),
                "rgb_offset/thermal_offset are non-zero and message_filters cannot shift stamps: "
                "pairing with the package's own pairer")
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return (OwnPairing(node, params, runtime, deliver, callback_group),
                "message_filters is not installed: pairing with the package's own pairer "
                "(same queue_size and slop, closest match)")
    return (MessageFiltersPairing(node, params, runtime, deliver, callback_group),
            "pairing with message_filters' ApproximateTimeSynchronizer")
