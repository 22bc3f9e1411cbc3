"""A dataset sequence into a rosbag2 with realistic camera stamps (`rgbt-track bag from-sequence`).

Stamps: RGB frame i at start + i / rate. The thermal camera sees the same frame, stamped with
an optional constant offset and uniform random jitter (seeded, so bags are reproducible); a
lower thermal rate keeps only the frame at or after each thermal tick. The bag (receive) time
of every message is its header stamp plus a small transport delay, so messages are stored in
the order a node would receive them.

Images: `sensor_msgs/CompressedImage` on `<topic>/compressed` by default, as robots record them
through image_transport. A frame file that is already JPEG or PNG is stored as it is (no second
lossy encoding: the decoded pixels are exactly what `rgbt-track run` reads, which is checked
frame by frame); other frames are encoded, RGB as JPEG and thermal as PNG (16-bit PNG for
16-bit thermal). `compressed=False` writes raw `sensor_msgs/Image` on `<topic>`.
"""
from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..codec import compressed_format, decode_image, encode_image
from ..data.datasets import Sequence
from .messages import (
    COMPRESSED_IMAGE,
    GROUND_TRUTH,
    IMAGE,
    compressed_image_message,
    ground_truth_message,
    image_message,
    typestore,
)

if TYPE_CHECKING:
    from rosbags.rosbag2 import Writer

START_NS = 1_700_000_000 * 1_000_000_000  # a fixed epoch keeps bags reproducible
_NS_PER_S = 1_000_000_000
SINGLE_MODALITY_NOTE = "single-modality sequence: the same frames feed the RGB and the thermal topic"


@dataclass(frozen=True)
class BagOptions:
    """Topics, rates and stamp imperfections of the bag; durations in seconds."""

    rate: float = 30.0
    thermal_rate: float | None = None  # None: same as rate
    thermal_offset: float = 0.0  # added to thermal stamps: thermal camera's clock ahead
    jitter: float = 0.0  # uniform in [-jitter, jitter], thermal stamps only
    seed: int = 0
    delay: float = 0.002  # receive time = header stamp + delay
    storage: str = "mcap"
    rgb_topic: str = "/rgb/image"
    thermal_topic: str = "/thermal/image"
    ground_truth_topic: str = "/ground_truth"
    infrared_ground_truth_topic: str = "/ground_truth/infrared"  # written where it differs from the visible one
    rgb_frame_id: str = "rgb_camera"
    thermal_frame_id: str = "thermal_camera"
    compressed: bool = True  # CompressedImage on <topic>/compressed; False: raw Image on <topic>
    jpeg_quality: int = 95  # for RGB frames that are not JPEG files already

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be > 0 Hz, got {self.rate}")
        if self.thermal_rate is not None and not (0 < self.thermal_rate <= self.rate):
            raise ValueError(f"thermal rate must be in (0, rate = {self.rate}], got {self.thermal_rate}")
        if not 0 <= self.jitter < 0.5 / self.rate:
            raise ValueError(f"jitter must be in [0, half a frame period = {0.5 / self.rate:g} s), got {self.jitter}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be in [1, 100], got {self.jpeg_quality}")
        if self.storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage must be mcap or sqlite3, got {self.storage!r}")


@dataclass(frozen=True)
class BagSummary:
    path: Path
    frames: int
    thermal_frames: int
    single_modality: bool
    duration: float
    compressed: bool = False
    passed_through: int = 0  # compressed frames stored as their JPEG/PNG files are
    infrared_truth: bool = False


def image_topics(options: BagOptions) -> tuple[str, str]:
    """The RGB and thermal topics written: `<topic>/compressed` for compressed images."""
    suffix = "/compressed" if options.compressed else ""
    return options.rgb_topic.rstrip("/") + suffix, options.thermal_topic.rstrip("/") + suffix


_PASSTHROUGH = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


class _Frames:
    """One camera's messages: raw, or compressed (the frame file's bytes where they decode to
    exactly the pixels `run` reads, else encoded)."""

    def __init__(self, camera: str, options: BagOptions, frame_id: str) -> None:
        self.camera, self.options, self.frame_id = camera, options, frame_id
        self.passed_through = 0

    def message(self, image: npt.NDArray[Any], path: Path | None, stamp: int) -> Any:
        if not self.options.compressed:
            return image_message(image, stamp, self.frame_id)
        codec = _PASSTHROUGH.get(path.suffix.lower()) if path is not None else None
        if path is not None and codec is not None and path.is_file():
            msg = compressed_image_message(path.read_bytes(), compressed_format(image, codec), stamp, self.frame_id)
            decoded = decode_image(msg, self.camera)
            if decoded.shape == image.shape and decoded.dtype == image.dtype and np.array_equal(decoded, image):
                self.passed_through += 1
                return msg
        codec = "jpeg" if self.camera == "rgb" and image.dtype == np.uint8 else "png"
        data = encode_image(image, codec, self.options.jpeg_quality)
        return compressed_image_message(data, compressed_format(image, codec), stamp, self.frame_id)


def _frame_path(paths: list[Path], index: int) -> Path | None:
    return paths[index] if index < len(paths) else None


def frame_stamps(count: int, options: BagOptions) -> tuple[list[int], list[int | None]]:
    """RGB stamps for every frame; thermal stamps, None where the lower thermal rate drops it."""
    period = _NS_PER_S / options.rate
    rgb = [START_NS + round(i * period) for i in range(count)]
    rng = np.random.default_rng(options.seed)
    ratio = (options.thermal_rate or options.rate) / options.rate
    offset = round(options.thermal_offset * _NS_PER_S)
    thermal: list[int | None] = []
    for i, stamp in enumerate(rgb):
        jitter = round(rng.uniform(-options.jitter, options.jitter) * _NS_PER_S) if options.jitter else 0
        kept = i == 0 or math.floor(i * ratio + 1e-9) > math.floor((i - 1) * ratio + 1e-9)
        thermal.append(stamp + offset + jitter if kept else None)
    return rgb, thermal


def _writer(path: Path, storage: str) -> Writer:
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    # Version 8: the rosbag2 metadata format of Jazzy, also read by Kilted.
    return Writer(path, version=8, storage_plugin=plugin)


def write_sequence_bag(
    sequence: Sequence,
    out: str | os.PathLike[str],
    options: BagOptions = BagOptions(),
    overwrite: bool = False,
    on_frame: Callable[[], object] | None = None,
) -> BagSummary:
    """Write the sequence's frames and visible ground truth into a new bag folder `out`."""
    out = Path(out)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists (rosbag2 writes a new folder)")
        shutil.rmtree(out)
    truth = sequence.truth["visible"]
    infrared = sequence.truth.get("infrared", truth)
    write_infrared = infrared is not truth and not np.array_equal(infrared, truth, equal_nan=True)
    count = min(len(sequence), len(truth) * sequence.truth_step)
    if count == 0:
        raise ValueError(f"sequence {sequence.name} has no frames")
    rgb_stamps, thermal_stamps = frame_stamps(count, options)
    store = typestore()
    delay = round(options.delay * _NS_PER_S)
    image_type = COMPRESSED_IMAGE if options.compressed else IMAGE
    rgb_topic, thermal_topic = image_topics(options)
    rgb_frames = _Frames("rgb", options, options.rgb_frame_id)
    thermal_frames = _Frames("thermal", options, options.thermal_frame_id)
    with _writer(out, options.storage) as writer:
        rgb_conn = writer.add_connection(rgb_topic, image_type, typestore=store)
        thermal_conn = writer.add_connection(thermal_topic, image_type, typestore=store)
        truth_conn = writer.add_connection(options.ground_truth_topic, GROUND_TRUTH, typestore=store)
        infrared_conn = None
        if write_infrared:
            infrared_conn = writer.add_connection(options.infrared_ground_truth_topic, GROUND_TRUTH, typestore=store)
        for key, value in _custom_data(sequence, options, write_infrared).items():
            writer.set_custom_data(key, value)
        for i in range(count):
            rgb = sequence.rgb(i)
            rgb_msg = rgb_frames.message(rgb, _frame_path(sequence.rgb_frames, i), rgb_stamps[i])
            messages = [(rgb_conn, rgb_stamps[i], rgb_msg)]
            if i % sequence.truth_step == 0:
                row = i // sequence.truth_step
                truth_msg = ground_truth_message(truth[row], rgb_stamps[i], options.rgb_frame_id)
                messages.append((truth_conn, rgb_stamps[i], truth_msg))
                if infrared_conn is not None:  # stamped with the RGB frame too: both annotate that pair
                    infrared_msg = ground_truth_message(infrared[row], rgb_stamps[i], options.thermal_frame_id)
                    messages.append((infrared_conn, rgb_stamps[i], infrared_msg))
            thermal_stamp = thermal_stamps[i]
            if thermal_stamp is not None:
                if sequence.single_modality:
                    thermal, path = rgb, _frame_path(sequence.rgb_frames, i)
                else:
                    thermal, path = sequence.thermal(i), _frame_path(sequence.thermal_frames, i)
                messages.append((thermal_conn, thermal_stamp, thermal_frames.message(thermal, path, thermal_stamp)))
            for conn, stamp, msg in sorted(messages, key=lambda m: m[1]):
                writer.write(conn, stamp + delay, store.serialize_cdr(msg, msg.__msgtype__))
            if on_frame is not None:
                on_frame()
    kept = [s for s in thermal_stamps if s is not None]
    return BagSummary(out, count, len(kept), sequence.single_modality, (rgb_stamps[-1] - rgb_stamps[0]) / _NS_PER_S,
                      options.compressed, rgb_frames.passed_through + thermal_frames.passed_through, write_infrared)


def write_recording(
    out: str | os.PathLike[str], topic: str, msgtype: str, messages: list[tuple[int, bytes]], storage: str = "mcap"
) -> Path:
    """A bag of one topic from (receive time ns, CDR bytes) pairs, as a live subscriber got them,
    so `rgbt-track bag score` can score what a node published."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    store = typestore()
    with _writer(out, storage) as writer:
        conn = writer.add_connection(topic, msgtype, typestore=store)
        for received, raw in messages:
            writer.write(conn, received, raw)
    return out


def _custom_data(sequence: Sequence, options: BagOptions, infrared_truth: bool) -> dict[str, str]:
    """Provenance in metadata.yaml; `bag evaluate` takes the sequence name and the protocol
    from it (scoring as `evaluate --dataset` does), readers otherwise rely on topic names."""
    rgb_topic, thermal_topic = image_topics(options)
    data = {
        "rgbt_tracking_ros.sequence": sequence.name,
        "rgbt_tracking_ros.protocol": sequence.protocol.name,
        "rgbt_tracking_ros.rgb_topic": rgb_topic,
        "rgbt_tracking_ros.thermal_topic": thermal_topic,
        "rgbt_tracking_ros.images": "compressed" if options.compressed else "raw",
        "rgbt_tracking_ros.ground_truth_topic": options.ground_truth_topic,
        "rgbt_tracking_ros.ground_truth_format": "PolygonStamped: top-left, bottom-right; RGB stamp",
        "rgbt_tracking_ros.rate": f"{options.rate:g}",
        "rgbt_tracking_ros.thermal_rate": f"{options.thermal_rate or options.rate:g}",
        "rgbt_tracking_ros.thermal_offset": f"{options.thermal_offset:g}",
        "rgbt_tracking_ros.jitter": f"{options.jitter:g}",
        "rgbt_tracking_ros.seed": str(options.seed),
        "rgbt_tracking_ros.single_modality": str(sequence.single_modality).lower(),
    }
    if infrared_truth:
        data["rgbt_tracking_ros.infrared_ground_truth_topic"] = options.infrared_ground_truth_topic
    if sequence.single_modality:
        data["rgbt_tracking_ros.description"] = SINGLE_MODALITY_NOTE
    return data
