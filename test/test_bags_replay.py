"""`bag replay` over DDS: a 10-frame bag published by the replayer, received in this process."""
from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from ros_availability import require_ros

pytest.importorskip("rosbags")
require_ros("sensor_msgs.msg", "rosgraph_msgs.msg", module_level=True)

import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from rgbt_tracking_ros.bags.replay import replay_bag  # noqa: E402
from rgbt_tracking_ros.bags.write import START_NS, BagOptions, write_sequence_bag  # noqa: E402
from rgbt_tracking_ros.codec import compressed_to_numpy, image_to_numpy  # noqa: E402
from rgbt_tracking_ros.data.datasets import Sequence  # noqa: E402
from rgbt_tracking_ros.eval.metrics import PROTOCOLS  # noqa: E402
from rgbt_tracking_ros.sync import stamp_ns  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:module 'sre_:DeprecationWarning")
FRAMES = 10
PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds_large_data.xml"


class _Frames(Sequence):
    """Synthetic frames without files: frame i is filled with the value i."""

    def rgb(self, index: int) -> np.ndarray:
        return np.full((8, 10, 3), index, np.uint8)


def _write(folder: Path, compressed: bool) -> Path:
    boxes = np.tile([1.0, 1.0, 4.0, 4.0], (FRAMES, 1))
    sequence = _Frames("flat", [Path("x")] * FRAMES, [Path("x")] * FRAMES, {"visible": boxes, "infrared": boxes},
                       PROTOCOLS["otb"], single_modality=True)
    write_sequence_bag(sequence, folder, BagOptions(compressed=compressed))
    return folder


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    return _write(tmp_path / "bag", compressed=False)


@pytest.fixture
def node(monkeypatch):
    """A node in a domain of its own (pid-derived, 10-100), Fast DDS large-data profile if shipped."""
    if PROFILE.is_file():
        monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", str(PROFILE))
        monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(PROFILE))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=10 + (os.getpid() + 37) % 91)
    node = rclpy.create_node(f"bag_replay_test_{uuid.uuid4().hex[:8]}", context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_replay_publishes_every_frame_with_original_timing(bag: Path, node) -> None:
    received: list[tuple[int, int, float]] = []
    clocks: list[int] = []
    node.create_subscription(Image, "/rgb/image", lambda m: received.append(
        (stamp_ns(m.header.stamp.sec, m.header.stamp.nanosec), int(image_to_numpy(m)[0, 0, 0]), time.monotonic())), 20)
    node.create_subscription(Clock, "/clock", lambda m: clocks.append(stamp_ns(m.clock.sec, m.clock.nanosec)), 50)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    spinning = threading.Event()
    spinning.set()

    def spin() -> None:
        while spinning.is_set():
            executor.spin_once(timeout_sec=0.02)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        sent = replay_bag(bag, clock=True, topics=["/rgb/image", "/thermal/image"], node=node, wait_for_subscribers=5)
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 5
        while len(received) < FRAMES and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        spinning.clear()
        thread.join(timeout=5)
        executor.shutdown(timeout_sec=2)
    assert sent == 2 * FRAMES
    stamps = [START_NS + round(i * 1e9 / 30) for i in range(FRAMES)]
    assert [(stamp, value) for stamp, value, _ in received] == list(zip(stamps, range(FRAMES)))
    assert elapsed >= (FRAMES - 1) / 30
    span = received[-1][2] - received[0][2]
    assert span == pytest.approx((FRAMES - 1) / 30, abs=0.1)
    assert len(clocks) == sent and clocks == sorted(clocks) and clocks[0] == stamps[0] + 2_000_000


def test_replay_refuses_unknown_topics(bag: Path, node) -> None:
    with pytest.raises(ValueError, match="/nope"):
        replay_bag(bag, topics=["/nope"], node=node)


def test_replay_publishes_compressed_images(tmp_path: Path, node) -> None:
    """A compressed bag goes out as CompressedImage on <topic>/compressed, selected by the base topic."""
    bag = _write(tmp_path / "bag", compressed=True)
    received: dict[str, list[tuple[int, np.ndarray]]] = {"rgb": [], "thermal": []}
    for camera in received:
        node.create_subscription(CompressedImage, f"/{camera}/image/compressed", lambda m, c=camera: received[c].append(
            (stamp_ns(m.header.stamp.sec, m.header.stamp.nanosec), compressed_to_numpy(m))), 20)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    spinning = threading.Event()
    spinning.set()

    def spin() -> None:
        while spinning.is_set():
            executor.spin_once(timeout_sec=0.02)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        sent = replay_bag(bag, rate=4.0, topics=["/rgb/image", "/thermal/image"], node=node, wait_for_subscribers=5)
        deadline = time.monotonic() + 5
        while min(map(len, received.values())) < FRAMES and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        spinning.clear()
        thread.join(timeout=5)
        executor.shutdown(timeout_sec=2)
    assert sent == 2 * FRAMES
    stamps = [START_NS + round(i * 1e9 / 30) for i in range(FRAMES)]
    assert [stamp for stamp, _ in received["rgb"]] == stamps
    # RGB as JPEG (a flat frame survives it within one grey level), thermal as lossless PNG.
    assert all(image.shape == (8, 10, 3) and np.abs(image.astype(int) - i).max() <= 1
               for i, (_, image) in enumerate(received["rgb"]))
    assert all(np.array_equal(image, np.full((8, 10, 3), i, np.uint8)) for i, (_, image) in enumerate(received["thermal"]))
