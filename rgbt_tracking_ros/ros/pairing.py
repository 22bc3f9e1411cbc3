"""Image subscriptions, conversion and time pairing of the two cameras.

Two back ends with the same queue_size and slop: message_filters' ApproximateTimeSynchronizer
where it is installed (robots) and allowed, else the package's own StampPairer, which also
applies the per-camera offsets, counts drops and explains poor synchronisation. Callbacks only
convert and pair; finished pairs go to ``on_pair``, which must be cheap (the node puts them in
a one-slot mailbox). A malformed image is counted and dropped, never raised: with
message_filters an exception would leave the synchronizer's lock held.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rgbt_tracking_ros.ros.conversions import (
    ImageConversionError,
    compressed_to_numpy,
    image_to_numpy,
)
from rgbt_tracking_ros.ros.parameters import NodeParameters
from rgbt_tracking_ros.sync import Pair, StampPairer, stamp_ns
from rgbt_tracking_ros.timing.monitor import OffsetMonitor

_LOG_PERIOD_S = 5.0  # throttle of repeated warnings
# Pairs below this fraction of the slower camera's messages: poorly synchronised.
_MIN_PAIR_RATIO = 1 / 3
_MIN_HEALTH_MESSAGES = 10


@dataclass(frozen=True)
class ImageFrame:
    """A converted image: the original header (copied into outputs) and the pixels."""

    header: Any
    image: np.ndarray
    stamp_ns: int


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


def image_qos(name: str, depth: int) -> Any:
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


def _qos_fields(profile: Any) -> dict[str, Any]:
    return {"history": profile.history, "reliability": profile.reliability,
            "durability": profile.durability}


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
    """Subscribes both cameras and hands finished pairs (of ImageFrame) to on_pair."""

    backend = ""

    def __init__(self, node: Any, params: NodeParameters,
                 on_pair: Callable[[Pair], None], callback_group: Any = None) -> None:
        self._node = node
        self._params = params
        self._on_pair = on_pair
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
        self.time_offset = OffsetMonitor(params.time_offset_estimation, params.slop,
                                         params.rgb_offset, params.thermal_offset)

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

    def _malformed(self, error: ImageConversionError) -> None:
        self._last_malformed = str(error)
        self._node.get_logger().warning(f"dropped a malformed image: {error}",
                                        throttle_duration_sec=_LOG_PERIOD_S)

    def _check_stamp(self, camera: Camera, frame: ImageFrame) -> None:
        if frame.stamp_ns == 0 and not self._zero_stamp_warned:
            self._zero_stamp_warned = True
            self._node.get_logger().warning(
                f"{camera.label} sends images with a zero stamp: pairing needs the capture time "
                "in header.stamp")

    # Camera time offset from the images (timing/monitor.py): frames in, a check on the
    # diagnostics timer, key-values and a warning out.

    def _observe_offset(self, camera: Camera, frame: ImageFrame) -> None:
        self.time_offset.add(camera.name, frame.stamp_ns, frame.image)

    def check_time_offset(self) -> None:
        """Estimate when due (call on the diagnostics timer); in apply mode set the offsets;
        log a warning (once a minute at most) while the offset exceeds half the slop."""
        logger = self._node.get_logger()
        try:
            correction = self.time_offset.update()
        except Exception as error:  # noqa: BLE001 - an estimate must never stop the node
            logger.error(f"camera time offset estimate failed: {error!r}", throttle_duration_sec=60.0)
            return
        if correction is not None and self._apply_offsets(correction.rgb_offset,
                                                          correction.thermal_offset):
            logger.info(f"camera time offset from the images: thermal stamps "
                        f"{correction.estimate.offset_ms:.1f} ms after RGB (correlation "
                        f"{correction.estimate.correlation:.2f}); thermal_offset set to "
                        f"{correction.thermal_offset:.4f}")
        warning = self.time_offset_warning()
        if warning:
            logger.warning(warning, throttle_duration_sec=60.0)

    def _apply_offsets(self, rgb_offset: float, thermal_offset: float) -> bool:
        """Use new offsets for pairing; False where the back end cannot shift stamps."""
        return False

    def time_offset_values(self) -> list[tuple[str, str]]:
        return self.time_offset.values()

    def time_offset_warning(self) -> str | None:
        return self.time_offset.warning(self.cameras["rgb"].resolved_topic,
                                        self.cameras["thermal"].resolved_topic)


def _display(node: Any, topic: str) -> str:
    try:
        return node.resolve_topic_name(topic)
    except Exception:  # an invalid name fails later, at subscription, with rclpy's message
        return topic


class OwnPairing(PairingInput):
    """The package's StampPairer: closest match within slop, offsets, counters, resets."""

    backend = "stamp_pairer"

    def __init__(self, node: Any, params: NodeParameters,
                 on_pair: Callable[[Pair], None], callback_group: Any = None) -> None:
        super().__init__(node, params, on_pair, callback_group)
        self._pairer = StampPairer(params.pairing_config())
        self._subscriptions: list[Any] = []
        self._resets_seen = 0

    def start(self) -> None:
        for camera in self.cameras.values():
            self._subscriptions.append(self._node.create_subscription(
                camera.message_type(), camera.topic,
                lambda msg, camera=camera: self._on_image(camera, msg), self._qos,
                callback_group=self._group))

    def stop(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions.clear()

    def _on_image(self, camera: Camera, msg: Any) -> None:
        camera.arrived()
        try:
            frame = camera.convert(msg)
        except ImageConversionError as error:
            self._malformed(error)
            return
        self._check_stamp(camera, frame)
        self._observe_offset(camera, frame)
        add = self._pairer.add_rgb if camera.name == "rgb" else self._pairer.add_thermal
        pairs = add(frame.stamp_ns, frame)
        self._log_reset()
        for pair in pairs:
            self._on_pair(pair)

    def _log_reset(self) -> None:
        stats = self._pairer.stats
        if stats.resets != self._resets_seen:
            self._resets_seen = stats.resets
            self._node.get_logger().warning(
                f"pairing reset: {stats.last_reset_reason}; waiting frames were dropped",
                throttle_duration_sec=1.0)

    def _apply_offsets(self, rgb_offset: float, thermal_offset: float) -> bool:
        self._pairer.set_offsets(rgb_offset, thermal_offset)
        return True

    def stats(self) -> InputStats:
        stats = self._pairer.stats
        rgb, thermal = self.cameras["rgb"], self.cameras["thermal"]
        return InputStats(rgb.received, thermal.received, stats.paired, stats.dropped_rgb,
                          stats.dropped_thermal, stats.resets, stats.last_dt, rgb.malformed,
                          thermal.malformed, self._last_malformed)

    def health_warning(self) -> str | None:
        return self._pairer.health_warning(
            _MIN_PAIR_RATIO, rgb_name=self.cameras["rgb"].resolved_topic,
            thermal_name=self.cameras["thermal"].resolved_topic)


class MessageFiltersPairing(PairingInput):
    """message_filters' ApproximateTimeSynchronizer (first match within slop, no offsets)."""

    backend = "message_filters"

    def __init__(self, node: Any, params: NodeParameters,
                 on_pair: Callable[[Pair], None], callback_group: Any = None) -> None:
        super().__init__(node, params, on_pair, callback_group)
        self._filters: list[Any] = []
        self._synchronizer: Any = None
        self._lock = threading.Lock()
        self._paired = 0
        self._last_dt: float | None = None
        self._health_base = (0, 0, 0)

    def start(self) -> None:
        import message_filters

        for camera in self.cameras.values():
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
        if self.time_offset.collecting:  # the offset needs every frame, not only paired ones
            try:
                image = compressed_to_numpy(msg) if camera.compressed else image_to_numpy(msg)
                stamp = msg.header.stamp
                self.time_offset.add(camera.name, stamp_ns(stamp.sec, stamp.nanosec), image)
            except Exception:  # noqa: BLE001 - a bad image is counted when its pair is converted
                pass

    def stop(self) -> None:
        for subscriber in self._filters:
            self._node.destroy_subscription(subscriber.sub)
        self._filters.clear()
        self._synchronizer = None

    def _on_synchronized(self, rgb_msg: Any, thermal_msg: Any) -> None:
        # Runs under the synchronizer's lock: nothing may escape from here.
        try:
            rgb = self.cameras["rgb"].convert(rgb_msg)
            thermal = self.cameras["thermal"].convert(thermal_msg)
        except ImageConversionError as error:
            self._malformed(error)
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
        try:
            self._on_pair(pair)
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


def create_pairing(node: Any, params: NodeParameters, on_pair: Callable[[Pair], None],
                   callback_group: Any = None) -> tuple[PairingInput, str]:
    """The pairing back end for these parameters, and a sentence saying why it was chosen."""
    if not params.use_message_filters:
        return (OwnPairing(node, params, on_pair, callback_group),
                "use_message_filters is false: pairing with the package's own pairer")
    if params.time_offset_estimation == "apply":
        return (OwnPairing(node, params, on_pair, callback_group),
                "time_offset_estimation is apply and message_filters cannot shift stamps: "
                "pairing with the package's own pairer")
    if params.rgb_offset or params.thermal_offset:
        return (OwnPairing(node, params, on_pair, callback_group),
                "rgb_offset/thermal_offset are non-zero and message_filters cannot shift stamps: "
                "pairing with the package's own pairer")
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return (OwnPairing(node, params, on_pair, callback_group),
                "message_filters is not installed: pairing with the package's own pairer "
                "(same queue_size and slop, closest match)")
    return (MessageFiltersPairing(node, params, on_pair, callback_group),
            "pairing with message_filters' ApproximateTimeSynchronizer")
