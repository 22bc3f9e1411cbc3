"""Message types and builders for the bags, on rosbags' typestore (no ROS install needed).

Images are `sensor_msgs/msg/CompressedImage` as robots record them (image_transport's
`compressed` transport on `<topic>/compressed`: JPEG for colour, PNG for thermal, 16-bit PNG for
16-bit thermal), or raw `sensor_msgs/msg/Image` on request.

Ground truth travels as `geometry_msgs/msg/PolygonStamped`, a standard type with a header
(`vision_msgs` is not available everywhere): two points, top-left (x, y) and bottom-right
(x + w, y + h), in RGB pixels, stamped with the RGB image's stamp. Points are float32, exact
for the whole- and half-pixel boxes benchmarks ship (and the metrics compute in float32).
An unknown box (NaN in the ground truth file) stays NaN.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..codec import encoding_info, image_encoding
from ..sync import stamp_ns

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
GROUND_TRUTH = "geometry_msgs/msg/PolygonStamped"
TRACKED_OBJECT = "rgbt_tracking_ros/msg/TrackedObject"
_NS_PER_S = 1_000_000_000
_MSG_DIR = Path(__file__).resolve().parents[2] / "msg"
# Fallback when the package is installed without its msg/ folder (a wheel): the same definition.
_TRACKED_OBJECT_FIELDS = """
std_msgs/Header header
string target_id
uint8 state
float64 x
float64 y
float64 width
float64 height
float32 confidence
uint32 age
uint32 frames_since_seen
builtin_interfaces/Duration pair_dt
"""


def _tracked_object_definition() -> str:
    path = _MSG_DIR / "TrackedObject.msg"
    return path.read_text() if path.is_file() else _TRACKED_OBJECT_FIELDS


@lru_cache(maxsize=1)
def typestore() -> Any:
    """ROS 2 Jazzy types (wire-identical to Humble and Kilted for these) plus TrackedObject."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg(_tracked_object_definition(), TRACKED_OBJECT))
    return store


def header(stamp: int, frame_id: str) -> Any:
    """A std_msgs/Header for an int-nanosecond stamp."""
    types = typestore().types
    sec, nanosec = divmod(int(stamp), _NS_PER_S)
    stamp_msg = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return types["std_msgs/msg/Header"](stamp=stamp_msg, frame_id=frame_id)


def header_stamp(msg: Any) -> int:
    """The header stamp of a message in int nanoseconds (works for rosbags and rclpy messages)."""
    return stamp_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)


def image_message(image: npt.NDArray[Any], stamp: int, frame_id: str) -> Any:
    """A rosbags sensor_msgs/Image of an RGB or single-channel frame, little-endian."""
    encoding = image_encoding(image)
    dtype, channels = encoding_info(encoding)
    data = np.ascontiguousarray(image, dtype=np.dtype(dtype).newbyteorder("<"))
    height, width = image.shape[:2]
    return typestore().types[IMAGE](
        header=header(stamp, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels * data.itemsize,
        data=data.view(np.uint8).reshape(-1),
    )


def compressed_image_message(data: bytes, fmt: str, stamp: int, frame_id: str) -> Any:
    """A rosbags sensor_msgs/CompressedImage of already encoded bytes; `fmt` as image_transport
    writes it (`rgb8; jpeg compressed bgr8`, `mono16; png compressed mono16`)."""
    return typestore().types[COMPRESSED_IMAGE](
        header=header(stamp, frame_id), format=fmt, data=np.frombuffer(data, dtype=np.uint8).copy()
    )


def ground_truth_message(box: npt.NDArray[np.float64], stamp: int, frame_id: str) -> Any:
    """The (x, y, w, h) box as a PolygonStamped: top-left and bottom-right corners."""
    types = typestore().types
    x, y, w, h = (float(v) for v in box)
    point = types["geometry_msgs/msg/Point32"]
    polygon = types["geometry_msgs/msg/Polygon"](points=[point(x=x, y=y, z=0.0), point(x=x + w, y=y + h, z=0.0)])
    return types[GROUND_TRUTH](header=header(stamp, frame_id), polygon=polygon)


def box_from_ground_truth(msg: Any) -> npt.NDArray[np.float64]:
    """(x, y, w, h) of a ground-truth PolygonStamped: two points (top-left, bottom-right) as
    `ground_truth_message` writes them, or the corners of an axis-aligned box."""
    points = msg.polygon.points
    if len(points) < 2:
        raise ValueError(f"a ground-truth polygon has 2 points (top-left, bottom-right), got {len(points)}")
    if len(points) == 2:
        (x1, y1), (x2, y2) = ((np.float32(p.x), np.float32(p.y)) for p in points)
    else:  # a box drawn as its corners (another recorder's convention): its axis-aligned bounds
        xs, ys = np.array([p.x for p in points], np.float32), np.array([p.y for p in points], np.float32)
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def box_from_tracked_object(msg: Any) -> npt.NDArray[np.float64]:
    """(x, y, w, h) of a TrackedObject."""
    return np.array([msg.x, msg.y, msg.width, msg.height], dtype=np.float64)
