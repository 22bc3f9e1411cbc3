"""The image codec: ``sensor_msgs`` images and numpy arrays, both ways, without ``cv_bridge``;
the node (ros/) and the bag tools (bags/) both use it.

``cv_bridge`` is not available on PyPI for ROS 2 (the ``cv-bridge`` package there is a broken
ROS 1 port), so the node converts images itself. Nothing here imports ``rclpy`` or
``sensor_msgs`` at import time: the functions work on any object with the fields of
``sensor_msgs/msg/Image`` (``header``, ``height``, ``width``, ``encoding``, ``is_bigendian``,
``step``, ``data``) or ``sensor_msgs/msg/CompressedImage`` (``header``, ``format``, ``data``).

Array conventions (the same in both directions):

* colour images are ``(H, W, 3)`` ``uint8`` in **RGB** order, whatever the wire order
  (``bgr8``/``bgra8``/``rgba8`` are reordered, alpha is dropped). ``8UC3`` has no defined
  channel order and is passed through unchanged;
* single-channel images are ``(H, W)`` with the encoding's native dtype (``uint8``,
  ``uint16``, ``int16``, ``float32``, ``float64``) in the machine's byte order.

Memory: :func:`image_to_numpy` always returns a new C-contiguous, writeable array that owns its
memory. With rclpy, ``msg.data`` is an ``array.array('B')`` (mutable, reused or resized by
whoever owns the message); a view on it would change under the caller, and while a view exists
the ``array.array`` cannot be resized (``BufferError``). The conversion is a single pass over
the pixels (the colour reorder, the byte swap or the row-padding removal *is* the copy), about
0.1 ms for a 640x512 bgr8 frame.

:func:`numpy_to_image` sets ``msg.data`` to an ``array.array('B')`` filled with
``array.frombytes`` (one memcpy). Assigning an ndarray to a generated rclpy message field goes
element by element (over 100 ms for a 640x512x3 frame with the Jazzy wheels), and a list or
``bytes`` is checked element by element when the message's field checks are on; an
``array.array('B')`` takes the fast path of the setter.
"""
from __future__ import annotations

import array
import operator
import sys
from typing import Any

import cv2
import numpy as np

__all__ = [
    "ImageConversionError",
    "SUPPORTED_ENCODINGS",
    "compressed_format",
    "compressed_to_numpy",
    "decode_image",
    "encode_image",
    "encoding_info",
    "image_encoding",
    "image_to_numpy",
    "numpy_to_image",
]


class ImageConversionError(ValueError):
    """A message or array that cannot be converted; the message names the problem."""


# encoding -> (little-endian dtype, channels). Names as in sensor_msgs/image_encodings.hpp.
_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "8UC1": ("u1", 1),
    "8UC3": ("u1", 3),
    "mono16": ("<u2", 1),
    "16UC1": ("<u2", 1),
    "16SC1": ("<i2", 1),
    "32FC1": ("<f4", 1),
    "64FC1": ("<f8", 1),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
_BY_LOWER = {name.lower(): name for name in _ENCODINGS}

# wire encoding -> OpenCV conversion to RGB (image_to_numpy)
_TO_RGB = {"bgr8": cv2.COLOR_BGR2RGB, "bgra8": cv2.COLOR_BGRA2RGB, "rgba8": cv2.COLOR_RGBA2RGB}
# (wire encoding, input channels) -> OpenCV conversion from the RGB(A) array (numpy_to_image)
_FROM_RGB = {
    ("bgr8", 3): cv2.COLOR_RGB2BGR,
    ("rgba8", 3): cv2.COLOR_RGB2RGBA,
    ("bgra8", 3): cv2.COLOR_RGB2BGRA,
    ("bgra8", 4): cv2.COLOR_RGBA2BGRA,
}


def _canonical(encoding: Any) -> str:
    if not isinstance(encoding, str):
        raise ImageConversionError(
            f"image encoding must be a string, got {type(encoding).__name__} {encoding!r}; "
            f"supported encodings: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    name = _BY_LOWER.get(encoding.strip().lower())
    if name is None:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; "
            f"supported encodings: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    return name


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    """``(dtype, channels)`` of a supported encoding, dtype in native byte order.

    Matching is case-insensitive (``MONO8`` is ``mono8``). Raises ImageConversionError for an
    unsupported encoding, listing the supported ones.
    """
    code, channels = _ENCODINGS[_canonical(encoding)]
    return np.dtype(code).newbyteorder("="), channels


def _int(value: Any, field: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ImageConversionError(
            f"image {field} must be an integer, got {type(value).__name__} {value!r}"
        ) from None


def _positive_int(value: Any, field: str) -> int:
    number = _int(value, field)
    if number <= 0:
        raise ImageConversionError(f"image {field} must be positive, got {number}")
    return number


def _byte_buffer(data: Any, what: str) -> memoryview:
    """A flat unsigned-byte memoryview on ``data`` (no copy)."""
    try:
        view = memoryview(data)
    except TypeError:
        raise ImageConversionError(
            f"{what} data must be bytes-like (bytes, bytearray, array.array('B'), uint8 "
            f"ndarray), got {type(data).__name__}"
        ) from None
    if view.itemsize != 1:
        raise ImageConversionError(
            f"{what} data must hold single bytes, got items of {view.itemsize} bytes "
            f"(format {view.format!r})"
        )
    if view.ndim != 1 or view.format != "B":
        if not view.c_contiguous:
            raise ImageConversionError(f"{what} data must be a contiguous buffer")
        view = view.cast("B")
    return view


def image_to_numpy(msg: Any) -> np.ndarray:
    """Converts a ``sensor_msgs/Image``-like message to a new numpy array.

    Returns ``(H, W, 3)`` uint8 RGB for colour encodings (``8UC3``: channels unchanged) and
    ``(H, W)`` with the native dtype for single-channel ones; see the module docstring. Honours
    ``is_bigendian`` for multi-byte types and row padding (``step > width * bytes_per_pixel``).
    The result never aliases ``msg.data``.

    Raises ImageConversionError for an unsupported encoding, a zero size, a step smaller than a
    row, data that is not bytes-like, or ``len(data) != step * height``.
    """
    encoding = _canonical(msg.encoding)
    code, channels = _ENCODINGS[encoding]
    height = _positive_int(msg.height, "height")
    width = _positive_int(msg.width, "width")
    step = _int(msg.step, "step")
    wire = np.dtype(code)
    itemsize = wire.itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"image step {step} is smaller than width * bytes_per_pixel = "
            f"{width} * {channels * itemsize} = {row_bytes} for encoding {encoding}"
        )
    buf = _byte_buffer(msg.data, "Image")
    expected = step * height
    if len(buf) != expected:
        raise ImageConversionError(
            f"Image data has {len(buf)} bytes, expected {expected} bytes "
            f"(step {step} * height {height}) for a {width}x{height} {encoding} image"
        )
    if itemsize > 1 and msg.is_bigendian:
        wire = wire.newbyteorder(">")

    if channels == 1:
        shape: tuple[int, ...] = (height, width)
        strides: tuple[int, ...] = (step, itemsize)
    else:
        shape = (height, width, channels)
        strides = (step, channels * itemsize, itemsize)
    # A strided view on the message bytes: padding is skipped by the row stride, nothing copied.
    view = np.ndarray(shape, dtype=wire, buffer=buf, strides=strides)

    conversion = _TO_RGB.get(encoding)
    if conversion is not None:
        rgb: np.ndarray = cv2.cvtColor(view, conversion)  # new array; OpenCV handles the row stride
        return rgb
    # astype copies (always, by default): drops padding and swaps bytes in the same pass
    native: np.ndarray = view.astype(wire.newbyteorder("="), order="C")
    return native


def compressed_to_numpy(msg: Any) -> np.ndarray:
    """Decodes a ``sensor_msgs/CompressedImage``-like message (JPEG, PNG, ...) with OpenCV.

    Decoded with ``IMREAD_UNCHANGED``, so 16-bit PNG (thermal) frames stay ``uint16``. Colour
    results are RGB ``(H, W, 3)`` (alpha dropped), grey ones ``(H, W)``. The format string is
    only used in messages: OpenCV recognises the codec from the data. ``compressedDepth``
    payloads (a private header before the PNG) are refused with a clear error.
    """
    fmt = str(getattr(msg, "format", "") or "")
    if "compresseddepth" in fmt.lower():
        raise ImageConversionError(
            f"CompressedImage format {fmt!r} (compressed_depth_image_transport) is not "
            "supported: subscribe to the raw or the 'compressed' transport instead"
        )
    buf = _byte_buffer(msg.data, "CompressedImage")
    if len(buf) == 0:
        raise ImageConversionError(f"CompressedImage data is empty (format {fmt!r})")
    encoded = np.frombuffer(buf, dtype=np.uint8)
    try:
        image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # some corrupt streams raise instead of returning None
        raise ImageConversionError(
            f"could not decode {len(buf)} bytes of CompressedImage data (format {fmt!r}): {exc}"
        ) from None
    if image is None:
        raise ImageConversionError(
            f"could not decode {len(buf)} bytes of CompressedImage data (format {fmt!r}) "
            "as an image: not a JPEG/PNG stream OpenCV can read"
        )
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        elif channels == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        elif channels == 1:
            image = image[:, :, 0].copy()
        else:
            raise ImageConversionError(
                f"decoded CompressedImage has {channels} channels, expected 1, 3 or 4"
            )
    return image


def _new_image_message() -> Any:
    try:
        from sensor_msgs.msg import Image
    except ImportError as exc:
        raise ImportError(
            "numpy_to_image needs a message to fill: pass msg=<an Image-like object>, or "
            "install the ROS 2 sensor_msgs Python package (see requirements/ and "
            "docs/ros-build.md)"
        ) from exc
    return Image()


def numpy_to_image(array_: Any, encoding: str, header: Any = None, msg: Any = None) -> Any:
    """Fills an ``Image``-like message from an array and returns it.

    ``array_`` follows this module's conventions: colour is ``(H, W, 3)`` uint8 **RGB** (or
    ``(H, W, 4)`` RGBA for ``rgba8``/``bgra8``; from RGB, alpha is set to 255) and ``encoding``
    selects the byte order on the wire (``bgr8`` stores B, G, R), so
    ``image_to_numpy(numpy_to_image(a, enc))`` returns ``a``. ``8UC3`` is stored unchanged.
    Single-channel encodings take ``(H, W)`` (or ``(H, W, 1)``) arrays whose dtype casts
    safely to the encoding's (``uint8`` into ``mono16`` is fine, ``float64`` into ``32FC1``
    is not: cast it yourself).

    ``msg`` is the message to fill (e.g. ``sensor_msgs.msg.Image()``); when omitted,
    ``sensor_msgs.msg.Image`` is imported (ImportError if absent). ``header`` is assigned when
    given, otherwise ``msg.header`` is left as it is. Data is written in the machine's byte
    order and ``is_bigendian`` set accordingly.
    """
    name = _canonical(encoding)
    code, channels = _ENCODINGS[name]
    dtype = np.dtype(code).newbyteorder("=")
    arr = np.asarray(array_)

    if channels == 1:
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim != 2:
            raise ImageConversionError(
                f"encoding {name} needs an (H, W) array, got shape {arr.shape}"
            )
    else:
        allowed = (3, 4) if channels == 4 else (3,)
        if arr.ndim != 3 or arr.shape[2] not in allowed:
            wanted = " or ".join(f"(H, W, {c})" for c in allowed)
            raise ImageConversionError(
                f"encoding {name} needs an {wanted} array, got shape {arr.shape}"
            )
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height == 0 or width == 0:
        raise ImageConversionError(f"cannot publish an empty image of shape {arr.shape}")
    if not np.can_cast(arr.dtype, dtype, casting="safe"):
        raise ImageConversionError(
            f"encoding {name} stores {dtype.name}; an array of {arr.dtype.name} does not "
            f"cast to it safely (cast it explicitly)"
        )

    conversion = _FROM_RGB.get((name, arr.shape[-1] if arr.ndim == 3 else 1))
    if conversion is not None:
        out = cv2.cvtColor(np.ascontiguousarray(arr, dtype=dtype), conversion)
    elif arr.ndim == 3 and arr.shape[2] != channels:  # should not happen: table covers it
        raise ImageConversionError(f"cannot store a {arr.shape} array as {name}")
    else:
        out = np.ascontiguousarray(arr, dtype=dtype)  # no copy when already right

    data = array.array("B")
    data.frombytes(out.data.cast("B"))  # one memcpy; see the module docstring

    if msg is None:
        msg = _new_image_message()
    if header is not None:
        msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = name
    msg.is_bigendian = 1 if sys.byteorder == "big" else 0
    msg.step = width * channels * dtype.itemsize
    msg.data = data
    return msg


# Frames to and from the bytes of a CompressedImage (image_transport's `compressed`): what
# the bag tools write and read, and the node reads.


def image_encoding(image: np.ndarray) -> str:
    """rgb8 for colour, mono8 / mono16 for single-channel uint8 / uint16 frames."""
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return "rgb8"
    if image.ndim == 2 and image.dtype in (np.uint8, np.uint16):
        return "mono8" if image.dtype == np.uint8 else "mono16"
    raise ValueError(f"no image encoding for a {image.dtype} array of shape {image.shape}")


def compressed_format(image: np.ndarray, codec: str) -> str:
    """image_transport's format string of an array encoded with `codec` ('jpeg' or 'png')."""
    encoding = image_encoding(image)
    wire = "bgr8" if encoding == "rgb8" else encoding
    return f"{encoding}; {codec} compressed {wire}"


def encode_image(image: np.ndarray, codec: str, jpeg_quality: int = 95) -> bytes:
    """JPEG or PNG bytes of an RGB (H, W, 3) uint8 or single-channel uint8/uint16 frame."""
    import cv2

    image_encoding(image)  # refuses what no image message could carry
    if codec == "jpeg" and image.dtype != np.uint8:
        raise ValueError(f"JPEG holds 8-bit frames, got {image.dtype}: use PNG")
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if codec == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(".jpg" if codec == "jpeg" else ".png", pixels, params)
    if not ok:
        raise ValueError(f"could not encode a {image.dtype} {image.shape} frame as {codec}")
    return data.tobytes()


def decode_image(msg: Any, camera: str = "thermal") -> np.ndarray:
    """Pixels of an Image or CompressedImage message. For the RGB camera a grey frame becomes
    3 channels, as reading the frame file in colour gives (what `rgbt-track run` feeds)."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        image = compressed_to_numpy(msg)
    else:
        image = image_to_numpy(msg)
    if camera == "rgb" and image.ndim == 2 and image.dtype == np.uint8:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image
