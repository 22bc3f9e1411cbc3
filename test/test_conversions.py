"""sensor_msgs image <-> numpy conversions (rgbt_tracking_ros.codec), no cv_bridge."""
from __future__ import annotations

import array
import struct
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from rgbt_tracking_ros.codec import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_to_numpy,
    encoding_info,
    image_to_numpy,
    numpy_to_image,
)

# rclpy's serialization imports lark, which still imports the deprecated sre_parse module
pytestmark = pytest.mark.filterwarnings("ignore:module 'sre_:DeprecationWarning")

H, W = 5, 7  # odd sizes catch swapped height/width and stride mistakes

EXPECTED_INFO = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1),
    "8UC1": (np.uint8, 1),
    "8UC3": (np.uint8, 3),
    "mono16": (np.uint16, 1),
    "16UC1": (np.uint16, 1),
    "16SC1": (np.int16, 1),
    "32FC1": (np.float32, 1),
    "64FC1": (np.float64, 1),
}
MULTI_BYTE = ["mono16", "16UC1", "16SC1", "32FC1", "64FC1"]


def image_msg(raw: bytes, height, width, encoding, step, is_bigendian=0, data_type=array.array):
    """A stand-in for sensor_msgs/msg/Image; data as rclpy gives it (array.array('B'))."""
    data = array.array("B", raw) if data_type is array.array else data_type(raw)
    return SimpleNamespace(
        header=SimpleNamespace(frame_id="cam"), height=height, width=width, encoding=encoding,
        is_bigendian=is_bigendian, step=step, data=data,
    )


def blank_image_msg():
    return SimpleNamespace(
        header=SimpleNamespace(frame_id="untouched"), height=0, width=0, encoding="",
        is_bigendian=0, step=0, data=array.array("B"),
    )


def sample(encoding: str, rng=None) -> np.ndarray:
    """A known array in the module's convention (colour = RGB) for an encoding."""
    rng = rng or np.random.default_rng(0)
    dtype, channels = EXPECTED_INFO[encoding]
    shape = (H, W) if channels == 1 else (H, W, 3)
    if np.issubdtype(dtype, np.floating):
        return (rng.standard_normal(shape) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def wire_bytes(pixels: np.ndarray, step: int, fill: int = 0xAB) -> bytes:
    """Rows of ``pixels`` (already in wire layout and byte order) padded to ``step`` bytes."""
    rows = np.ascontiguousarray(pixels).reshape(pixels.shape[0], -1).view(np.uint8)
    out = np.full((pixels.shape[0], step), fill, dtype=np.uint8)
    out[:, : rows.shape[1]] = rows
    return out.tobytes()


# --- encoding table ---------------------------------------------------------------------


def test_supported_encodings_listed():
    assert set(SUPPORTED_ENCODINGS) == set(EXPECTED_INFO)


@pytest.mark.parametrize("encoding", sorted(EXPECTED_INFO))
def test_encoding_info(encoding):
    dtype, channels = encoding_info(encoding)
    assert (dtype, channels) == (np.dtype(EXPECTED_INFO[encoding][0]), EXPECTED_INFO[encoding][1])
    assert dtype.isnative


def test_encoding_names_are_case_insensitive():
    assert encoding_info("MONO16") == encoding_info("mono16")
    assert encoding_info("32fc1") == encoding_info("32FC1")
    msg = image_msg(bytes(range(6)), 2, 3, "Mono8", 3)
    np.testing.assert_array_equal(image_to_numpy(msg), np.arange(6, dtype=np.uint8).reshape(2, 3))


# --- image_to_numpy / numpy_to_image round trips --------------------------------------------


@pytest.mark.parametrize("encoding", sorted(EXPECTED_INFO))
def test_round_trip_every_encoding(encoding):
    original = sample(encoding)
    msg = numpy_to_image(original, encoding, msg=blank_image_msg())
    dtype, channels = EXPECTED_INFO[encoding]
    assert (msg.height, msg.width, msg.encoding) == (H, W, encoding)
    assert msg.step == W * channels * np.dtype(dtype).itemsize
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    assert len(msg.data) == msg.step * msg.height
    assert msg.is_bigendian == (1 if sys.byteorder == "big" else 0)
    back = image_to_numpy(msg)
    assert back.dtype == np.dtype(dtype)
    assert back.shape == original.shape
    np.testing.assert_array_equal(back, original)


@pytest.mark.parametrize(
    "encoding, wire",
    [
        ("rgb8", [10, 20, 30]),
        ("bgr8", [30, 20, 10]),
        ("8UC3", [10, 20, 30]),
        ("rgba8", [10, 20, 30, 255]),
        ("bgra8", [30, 20, 10, 255]),
    ],
)
def test_numpy_to_image_writes_wire_channel_order(encoding, wire):
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    msg = numpy_to_image(rgb, encoding, msg=blank_image_msg())
    assert list(msg.data[: len(wire)]) == wire


@pytest.mark.parametrize(
    "encoding, stored",
    [
        ("rgb8", (255, 0, 0)),
        ("bgr8", (0, 0, 255)),
        ("rgba8", (255, 0, 0, 7)),
        ("bgra8", (0, 0, 255, 7)),
    ],
)
def test_known_red_pixel_comes_back_rgb(encoding, stored):
    channels = len(stored)
    raw = bytearray(2 * 3 * channels)
    raw[channels * 4 : channels * 5] = bytes(stored)  # pixel (row 1, col 1)
    out = image_to_numpy(image_msg(bytes(raw), 2, 3, encoding, 3 * channels))
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    assert out[1, 1].tolist() == [255, 0, 0]
    assert out.sum() == 255  # everything else black, alpha dropped


def test_8uc3_channels_pass_through_unchanged():
    raw = bytes([1, 2, 3, 4, 5, 6])
    out = image_to_numpy(image_msg(raw, 1, 2, "8UC3", 6))
    assert out.tolist() == [[[1, 2, 3], [4, 5, 6]]]


@pytest.mark.parametrize("encoding", MULTI_BYTE)
@pytest.mark.parametrize("bigendian", [0, 1])
def test_byte_order_follows_is_bigendian(encoding, bigendian):
    values = sample(encoding)
    wire = values.astype(values.dtype.newbyteorder(">" if bigendian else "<"))
    msg = image_msg(wire.tobytes(), H, W, encoding, wire.strides[0], is_bigendian=bigendian)
    out = image_to_numpy(msg)
    assert out.dtype == values.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_mono16_big_and_little_endian_known_value():
    little = image_msg(bytes([0x34, 0x12]), 1, 1, "mono16", 2, is_bigendian=0)
    big = image_msg(bytes([0x12, 0x34]), 1, 1, "mono16", 2, is_bigendian=1)
    assert image_to_numpy(little)[0, 0] == 0x1234
    assert image_to_numpy(big)[0, 0] == 0x1234
    # the same bytes read with the other flag give the swapped value
    big.is_bigendian = 0
    assert image_to_numpy(big)[0, 0] == 0x3412


@pytest.mark.parametrize(
    "encoding, bigendian",
    [("rgb8", 0), ("bgr8", 0), ("bgra8", 0), ("mono8", 0), ("mono16", 1), ("16SC1", 0),
     ("32FC1", 0), ("32FC1", 1), ("64FC1", 1)],
)
@pytest.mark.parametrize("padding", [1, 5, 64])
def test_row_padding_is_skipped(encoding, bigendian, padding):
    values = sample(encoding)
    dtype, channels = EXPECTED_INFO[encoding]
    if channels == 1:
        wire = values.astype(np.dtype(dtype).newbyteorder(">" if bigendian else "<"))
    elif encoding == "rgb8":
        wire = values
    elif encoding == "bgr8":
        wire = values[..., ::-1]
    else:  # bgra8
        wire = np.concatenate([values[..., ::-1], np.full((H, W, 1), 9, np.uint8)], axis=2)
    row = W * channels * np.dtype(dtype).itemsize
    step = row + padding  # odd paddings leave multi-byte rows unaligned
    out = image_to_numpy(image_msg(wire_bytes(wire, step), H, W, encoding, step, bigendian))
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("data_type", [bytes, bytearray, array.array, memoryview,
                                       lambda raw: np.frombuffer(raw, np.uint8)])
def test_accepts_any_byte_buffer(data_type):
    values = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    msg = image_msg(values.astype("<u2").tobytes(), 3, 4, "16UC1", 8, data_type=data_type)
    np.testing.assert_array_equal(image_to_numpy(msg), values)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16", "32FC1"])
def test_result_does_not_alias_message_buffer(encoding):
    values = sample(encoding)
    msg = numpy_to_image(values, encoding, msg=blank_image_msg())
    out = image_to_numpy(msg)
    assert out.flags.writeable
    assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    for i in range(len(msg.data)):  # the publisher reuses the message buffer...
        msg.data[i] = 0
    msg.data.append(0)  # ...or resizes it: no buffer export may be left behind
    np.testing.assert_array_equal(out, values)
    out[...] = 0  # writing into the result leaves the message alone
    assert not any(msg.data)


# --- image_to_numpy errors ------------------------------------------------------------------


def _error(msg) -> str:
    with pytest.raises(ImageConversionError) as info:
        image_to_numpy(msg)
    return str(info.value)


def test_error_is_a_value_error():
    assert issubclass(ImageConversionError, ValueError)


def test_unknown_encoding_is_named_with_supported_list():
    text = _error(image_msg(bytes(4), 2, 2, "yuv422", 4))
    assert "yuv422" in text
    for name in ("rgb8", "mono16", "32FC1"):
        assert name in text


def test_non_string_encoding():
    assert "encoding" in _error(image_msg(bytes(4), 2, 2, None, 2))


@pytest.mark.parametrize("field", ["width", "height"])
@pytest.mark.parametrize("value", [0, -3])
def test_non_positive_size(field, value):
    msg = image_msg(bytes(4), 2, 2, "mono8", 2)
    setattr(msg, field, value)
    text = _error(msg)
    assert field in text and str(value) in text


def test_non_integer_size():
    msg = image_msg(bytes(4), 2, 2, "mono8", 2)
    msg.width = 2.0
    assert "width" in _error(msg)


def test_step_smaller_than_row():
    text = _error(image_msg(bytes(10), 2, 2, "rgb8", 5))  # a row is 2 * 3 = 6 bytes
    assert "step 5" in text and "6" in text and "rgb8" in text


def test_step_smaller_than_row_multi_byte():
    text = _error(image_msg(bytes(6), 2, 2, "mono16", 3))  # a row is 2 * 2 = 4 bytes
    assert "step 3" in text and "4" in text


@pytest.mark.parametrize("size", [23, 25, 0])
def test_data_length_mismatch(size):
    # 4 x 2 rgb8 with step 12: expected 24 bytes
    text = _error(image_msg(bytes(size), 2, 4, "rgb8", 12))
    assert "expected 24 bytes" in text and f"{size} bytes" in text


def test_data_length_mismatch_with_padding():
    # 320 x 2 rgb8: rows of 960 bytes padded to step 1000, so 2000 bytes; 1920 is unpadded
    text = _error(image_msg(bytes(1920), 2, 320, "rgb8", 1000))
    assert "expected 2000 bytes" in text and "1920" in text


@pytest.mark.parametrize("data", [[0, 1, 2, 3], "abcd", None, 1234])
def test_data_not_bytes_like(data):
    msg = image_msg(bytes(4), 2, 2, "mono8", 2)
    msg.data = data
    text = _error(msg)
    assert "bytes-like" in text and type(data).__name__ in text


def test_data_with_wide_items_is_refused():
    msg = image_msg(bytes(8), 2, 2, "mono16", 4)
    msg.data = array.array("H", [1, 2, 3, 4])
    assert "2 bytes" in _error(msg)


# --- numpy_to_image -------------------------------------------------------------------------


def test_numpy_to_image_header_handling():
    header = SimpleNamespace(frame_id="thermal")
    msg = numpy_to_image(np.zeros((2, 2), np.uint8), "mono8", header=header, msg=blank_image_msg())
    assert msg.header is header
    msg = numpy_to_image(np.zeros((2, 2), np.uint8), "mono8", msg=blank_image_msg())
    assert msg.header.frame_id == "untouched"


def test_numpy_to_image_returns_the_given_message():
    target = blank_image_msg()
    assert numpy_to_image(np.zeros((2, 2), np.uint8), "mono8", msg=target) is target


def test_numpy_to_image_non_contiguous_and_foreign_byte_order_input():
    base = np.arange(H * W * 2, dtype=">u2").reshape(H, W * 2)
    view = base[:, ::2]  # strided, big-endian
    msg = numpy_to_image(view, "mono16", msg=blank_image_msg())
    assert msg.step == W * 2
    np.testing.assert_array_equal(image_to_numpy(msg), view.astype(np.uint16))
    rgb = sample("rgb8")[:, ::-1]  # negative strides
    np.testing.assert_array_equal(
        image_to_numpy(numpy_to_image(rgb, "bgr8", msg=blank_image_msg())), rgb
    )


def test_numpy_to_image_safe_casts():
    small = np.arange(6, dtype=np.uint8).reshape(2, 3)
    msg = numpy_to_image(small, "mono16", msg=blank_image_msg())
    assert image_to_numpy(msg).dtype == np.uint16
    np.testing.assert_array_equal(image_to_numpy(msg), small)
    with pytest.raises(ImageConversionError, match="float64"):
        numpy_to_image(np.zeros((2, 3), np.float64), "32FC1", msg=blank_image_msg())
    with pytest.raises(ImageConversionError, match="int64"):
        numpy_to_image(np.zeros((2, 3), np.int64), "mono16", msg=blank_image_msg())


def test_numpy_to_image_rgba_input_keeps_alpha():
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = (1, 2, 3, 4)
    assert list(numpy_to_image(rgba, "rgba8", msg=blank_image_msg()).data[:4]) == [1, 2, 3, 4]
    assert list(numpy_to_image(rgba, "bgra8", msg=blank_image_msg()).data[:4]) == [3, 2, 1, 4]


def test_numpy_to_image_accepts_trailing_single_channel():
    values = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    msg = numpy_to_image(values, "mono8", msg=blank_image_msg())
    np.testing.assert_array_equal(image_to_numpy(msg), values[:, :, 0])


@pytest.mark.parametrize(
    "array_, encoding, fact",
    [
        (np.zeros((2, 3, 3), np.uint8), "mono8", "(2, 3, 3)"),
        (np.zeros((2, 3), np.uint8), "rgb8", "(2, 3)"),
        (np.zeros((2, 3, 4), np.uint8), "bgr8", "(2, 3, 4)"),
        (np.zeros((0, 3), np.uint8), "mono8", "empty"),
        (np.zeros((2, 3), np.uint8), "yuv422", "yuv422"),
    ],
)
def test_numpy_to_image_errors(array_, encoding, fact):
    with pytest.raises(ImageConversionError) as info:
        numpy_to_image(array_, encoding, msg=blank_image_msg())
    assert fact in str(info.value)


def test_numpy_to_image_without_sensor_msgs_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "sensor_msgs", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "sensor_msgs.msg", None)
    with pytest.raises(ImportError, match="msg="):
        numpy_to_image(np.zeros((2, 2), np.uint8), "mono8")


def test_module_imports_no_ros():
    code = (
        "import sys, rgbt_tracking_ros.codec\n"
        "ros = ('rclpy', 'sensor_msgs', 'cv_bridge')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ros]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- compressed -----------------------------------------------------------------------------


def compressed_msg(data, fmt="jpeg"):
    return SimpleNamespace(header=SimpleNamespace(frame_id="cam"), format=fmt, data=data)


def encode(ext: str, image: np.ndarray) -> array.array:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return array.array("B", buf.tobytes())


def test_compressed_jpeg_colour_comes_back_rgb():
    bgr = np.zeros((32, 48, 3), np.uint8)
    bgr[:, :16] = (0, 0, 255)  # red in OpenCV's BGR
    bgr[:, 16:32] = (0, 255, 0)
    bgr[:, 32:] = (255, 0, 0)  # blue
    out = compressed_to_numpy(compressed_msg(encode(".jpg", bgr), "rgb8; jpeg compressed bgr8"))
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8
    for col, rgb in ((8, (255, 0, 0)), (24, (0, 255, 0)), (40, (0, 0, 255))):
        np.testing.assert_allclose(out[16, col].astype(int), rgb, atol=12)


def test_compressed_png_16bit_stays_16bit():
    thermal = np.random.default_rng(1).integers(0, 65535, (24, 40), dtype=np.uint16)
    out = compressed_to_numpy(compressed_msg(encode(".png", thermal), "16UC1; png compressed"))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, thermal)


def test_compressed_png_mono8_and_bytes_data():
    grey = np.arange(60, dtype=np.uint8).reshape(6, 10)
    out = compressed_to_numpy(compressed_msg(encode(".png", grey).tobytes(), "png"))
    assert out.shape == (6, 10)
    np.testing.assert_array_equal(out, grey)


def test_compressed_png_with_alpha_drops_alpha():
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2] = 200  # red
    bgra[..., 3] = 10
    out = compressed_to_numpy(compressed_msg(encode(".png", bgra), "png"))
    assert out.shape == (4, 4, 3)
    assert out[0, 0].tolist() == [200, 0, 0]


def test_compressed_16bit_colour_png_reordered():
    bgr = np.zeros((3, 3, 3), np.uint16)
    bgr[..., 0] = 60000  # blue
    out = compressed_to_numpy(compressed_msg(encode(".png", bgr), "png"))
    assert out.dtype == np.uint16 and out[1, 1].tolist() == [0, 0, 60000]


@pytest.mark.parametrize("data", [b"not an image at all", bytes(100), b"\x89PNG\r\n\x1a\ntrunc"])
def test_compressed_garbage_raises(data):
    with pytest.raises(ImageConversionError, match="could not decode"):
        compressed_to_numpy(compressed_msg(array.array("B", data), "png"))


def test_compressed_empty_raises():
    with pytest.raises(ImageConversionError, match="empty"):
        compressed_to_numpy(compressed_msg(array.array("B"), "jpeg"))


def test_compressed_not_bytes_like_raises():
    with pytest.raises(ImageConversionError, match="bytes-like"):
        compressed_to_numpy(compressed_msg([1, 2, 3], "jpeg"))


def test_compressed_depth_is_refused_clearly():
    png = encode(".png", np.zeros((2, 2), np.uint16)).tobytes()
    payload = struct.pack("<iff", 0, 0.0, 0.0) + png  # the codec's 12-byte header, then PNG
    with pytest.raises(ImageConversionError, match="compressedDepth"):
        compressed_to_numpy(compressed_msg(payload, "16UC1; compressedDepth png"))


# --- the real ROS 2 message classes (when the ROS 2 wheels are installed) -----------------


@pytest.fixture
def sensor_msgs():
    try:
        import sensor_msgs.msg
    except ImportError as exc:
        pytest.skip(f"sensor_msgs is not importable ({exc}); install the ROS 2 wheels (make ros)")
    return sensor_msgs.msg


@pytest.fixture
def serialization():
    try:
        from rclpy.serialization import deserialize_message, serialize_message
    except ImportError as exc:
        pytest.skip(f"rclpy is not importable ({exc}); install the ROS 2 wheels (make ros)")
    return serialize_message, deserialize_message


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono16", "32FC1"])
def test_real_image_round_trip(sensor_msgs, encoding):
    from std_msgs.msg import Header

    values = sample(encoding)
    msg = numpy_to_image(values, encoding, header=Header(frame_id="thermal"))
    assert isinstance(msg, sensor_msgs.Image)
    assert msg.header.frame_id == "thermal" and msg.encoding == encoding
    assert isinstance(msg.data, array.array)
    np.testing.assert_array_equal(image_to_numpy(msg), values)
    # filling a given instance works too
    target = sensor_msgs.Image()
    assert numpy_to_image(values, encoding, msg=target) is target
    np.testing.assert_array_equal(image_to_numpy(target), values)


def test_real_image_padded_big_endian(sensor_msgs):
    values = sample("mono16")
    step = W * 2 + 6
    msg = sensor_msgs.Image(
        height=H, width=W, encoding="mono16", is_bigendian=1, step=step,
        data=array.array("B", wire_bytes(values.astype(">u2"), step)),
    )
    np.testing.assert_array_equal(image_to_numpy(msg), values)


@pytest.mark.parametrize("encoding", ["bgr8", "mono8", "16UC1", "64FC1"])
def test_real_image_through_rclpy_serialization(sensor_msgs, serialization, encoding):
    from std_msgs.msg import Header

    serialize_message, deserialize_message = serialization
    values = sample(encoding)
    sent = numpy_to_image(values, encoding, header=Header(frame_id="cam"))
    wire = serialize_message(sent)
    assert isinstance(wire, bytes) and len(wire) > values.nbytes
    received = deserialize_message(wire, sensor_msgs.Image)
    assert received.header.frame_id == "cam"
    assert (received.height, received.width, received.step) == (sent.height, sent.width, sent.step)
    np.testing.assert_array_equal(image_to_numpy(received), values)


def test_real_compressed_image_through_rclpy_serialization(sensor_msgs, serialization):
    serialize_message, deserialize_message = serialization
    thermal = np.random.default_rng(2).integers(0, 65535, (12, 20), dtype=np.uint16)
    msg = sensor_msgs.CompressedImage(format="16UC1; png compressed", data=encode(".png", thermal))
    received = deserialize_message(serialize_message(msg), sensor_msgs.CompressedImage)
    out = compressed_to_numpy(received)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, thermal)
