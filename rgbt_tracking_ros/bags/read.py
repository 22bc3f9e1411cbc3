"""Reading bags in receive order, and the node's pairing replayed over them, in process."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..sync import Pair, PairingConfig, StampPairer
from .messages import GROUND_TRUTH, IMAGE_TYPES, box_from_ground_truth, header_stamp, typestore

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.rosbag2 import Reader

_FLUSH_GAP_NS = 10 * 1_000_000_000


@contextmanager
def open_bag(path: str | os.PathLike[str]) -> Iterator[Reader]:
    """A rosbags Reader (mcap or sqlite3), with a clear error when the folder is no bag."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise FileNotFoundError(f"{path} is not a rosbag2 folder (no metadata.yaml)")
    with Reader(path) as reader:
        yield reader


def connections(reader: Reader, topic: str, msgtype: str | None = None) -> list[Connection]:
    """The bag's connections on `topic`, checked against the expected type."""
    found = [c for c in reader.connections if c.topic == topic]
    if not found:
        topics = ", ".join(sorted({c.topic for c in reader.connections}))
        raise ValueError(f"no topic {topic} in the bag (topics: {topics})")
    wrong = [c.msgtype for c in found if msgtype is not None and c.msgtype != msgtype]
    if wrong:
        raise ValueError(f"topic {topic} carries {wrong[0]}, expected {msgtype}")
    return found


def image_topic(reader: Reader, topic: str) -> str:
    """The bag topic of a camera: `topic` itself (Image or CompressedImage), else image_transport's
    `<topic>/compressed`, so `--rgb-topic /camera/color/image_raw` finds either recording."""
    types = {c.topic: c.msgtype for c in reader.connections}
    for candidate in (topic, topic.rstrip("/") + "/compressed"):
        if types.get(candidate) in IMAGE_TYPES:
            return candidate
    if topic in types:
        raise ValueError(f"topic {topic} carries {types[topic]}, expected one of {', '.join(IMAGE_TYPES)}")
    images = ", ".join(sorted(t for t, m in types.items() if m in IMAGE_TYPES)) or "none"
    raise ValueError(f"no image topic {topic} or {topic.rstrip('/')}/compressed in the bag (image topics: {images})")


def has_topic(path: str | os.PathLike[str], topic: str) -> bool:
    with open_bag(path) as reader:
        return any(c.topic == topic for c in reader.connections)


def messages(reader: Reader, conns: list[Connection]) -> Iterator[tuple[str, int, Any]]:
    """(topic, receive time ns, deserialised message) in the bag's receive order."""
    store = typestore()
    for conn, timestamp, raw in reader.messages(connections=conns):
        yield conn.topic, timestamp, store.deserialize_cdr(raw, conn.msgtype)


def read_ground_truth(
    path: str | os.PathLike[str], topic: str = "/ground_truth"
) -> dict[int, npt.NDArray[np.float64]]:
    """{RGB stamp ns: (x, y, w, h)} from a PolygonStamped topic (`from-sequence` writes two points,
    top-left and bottom-right; a polygon of more points counts by its axis-aligned bounds)."""
    with open_bag(path) as reader:
        conns = connections(reader, topic, GROUND_TRUTH)
        return {header_stamp(msg): box_from_ground_truth(msg) for _, _, msg in messages(reader, conns)}


class ImagePairs:
    """Pairs of deserialised image messages, formed as the node forms them, in receive order.

    The topics are the cameras' base topics: raw `sensor_msgs/Image` there, or
    `sensor_msgs/CompressedImage` there or on `<topic>/compressed` (see `image_topic`).

    Each camera's messages go to a `StampPairer` as they would arrive at the node. At the end
    of the bag the frames still waiting are settled as if both cameras had sent one more frame
    much later, so the last pairs are not lost (the node would emit them on its next frames).
    Iterate once; the counters are complete after that.
    """

    def __init__(self, path: str | os.PathLike[str], rgb_topic: str, thermal_topic: str, config: PairingConfig) -> None:
        self.path, self.rgb_topic, self.thermal_topic = path, rgb_topic, thermal_topic
        self.pairer = StampPairer(config)
        self.received = {"rgb": 0, "thermal": 0}
        self.pairs = 0

    def __iter__(self) -> Iterator[Pair]:
        for pair in self._pairs():
            self.pairs += 1
            yield pair

    def _pairs(self) -> Iterator[Pair]:
        newest = 0
        with open_bag(self.path) as reader:
            rgb_topic, thermal_topic = image_topic(reader, self.rgb_topic), image_topic(reader, self.thermal_topic)
            conns = connections(reader, rgb_topic) + connections(reader, thermal_topic)
            for topic, _, msg in messages(reader, conns):
                stamp = header_stamp(msg)
                newest = max(newest, stamp)
                camera = "rgb" if topic == rgb_topic else "thermal"
                self.received[camera] += 1
                yield from self.pairer.add_rgb(stamp, msg) if camera == "rgb" else self.pairer.add_thermal(stamp, msg)
        config = self.pairer.config
        end = newest + _FLUSH_GAP_NS + round(2e9 * (abs(config.rgb_offset) + abs(config.thermal_offset)))
        sentinel = object()
        flushed = self.pairer.add_rgb(end, sentinel) + self.pairer.add_thermal(end, sentinel)
        yield from (pair for pair in flushed if pair.rgb is not sentinel and pair.thermal is not sentinel)
