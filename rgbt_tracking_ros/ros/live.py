"""The node on a replayed recording, as on a robot: the node in a process of its own, the bag
published to live topics with its original timing, and the node's TrackedObject outputs
recorded as they arrive over DDS."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..bags.replay import replay_bag
from ..package_files import find_package_file

if TYPE_CHECKING:
    from rclpy.node import Node

STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")  # Fast DDS 2.x, 3


def use_large_data_profile() -> None:
    """Camera-sized images overflow Fast DDS's default 512 KB shared-memory segment and fall
    back to fragmented UDP, which loses frames under load: use the package's profile, for this
    process and the node, unless the user chose one."""
    if any(os.environ.get(name) for name in PROFILE_VARIABLES):
        return
    profile = find_package_file("config", "fastdds_large_data.xml")
    for name in PROFILE_VARIABLES:
        os.environ[name] = str(profile)


@dataclass
class LiveRun:
    outputs: list[tuple[int, bytes]]  # (receive time ns, serialized TrackedObject)
    published: int  # image messages replayed
    seconds: float  # replay duration


class NodeProcess:
    """`rgbt-track node ...` in a child process, its log in a file; stopped with Ctrl-C."""

    def __init__(self, node_args: list[str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")
        command = [sys.executable, "-m", "rgbt_tracking_ros.cli", "node", *node_args]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=os.environ.copy())

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"the tracker node exited with code {self.process.returncode}; its log ends:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _wait_for_node(player: Node, topics: list[str], node: NodeProcess, timeout: float) -> None:
    """Until the node subscribes to both cameras (it does when it is active)."""
    deadline = time.monotonic() + timeout
    while any(player.count_subscribers(topic) == 0 for topic in topics):
        node.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the tracker node did not subscribe to {topics} within {timeout:.0f} s "
                               f"(see {node.log_path})")
        time.sleep(0.1)


def _wait_until_quiet(outputs: list[tuple[int, bytes]], node: NodeProcess, quiet: float, limit: float) -> None:
    """Until no output arrived for `quiet` s: the node finishes the pairs it still holds."""
    deadline = time.monotonic() + limit
    count, since = len(outputs), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        node.check_alive()
        time.sleep(0.05)
        if len(outputs) != count:
            count, since = len(outputs), time.monotonic()


def run_node_on_bag(
    bag: str | os.PathLike[str],
    node_args: list[str],
    log_path: Path,
    image_topics: list[str],
    output_topic: str = "/tracked_object",
    rate: float = 1.0,
) -> LiveRun:
    """Start the node, replay the bag's image topics in real time (x rate), record its outputs."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.utilities import try_shutdown

    from rgbt_tracking_ros.msg import TrackedObject

    use_large_data_profile()
    node = NodeProcess(node_args, log_path)
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    outputs: list[tuple[int, bytes]] = []

    def record(raw: bytes) -> None:  # serialized: raw=True below
        outputs.append((time.time_ns(), raw))

    try:
        recorder = rclpy.create_node("rgbt_live_recorder", context=context)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        recorder.create_subscription(TrackedObject, output_topic, record, qos, raw=True)
        executor.add_node(recorder)
        threading.Thread(target=executor.spin, daemon=True).start()
        player = rclpy.create_node("rgbt_live_player", context=context)
        _wait_for_node(player, image_topics, node, STARTUP_TIMEOUT_S)
        start = time.monotonic()
        published = replay_bag(bag, rate=rate, topics=image_topics, node=player, wait_for_subscribers=5.0)
        seconds = time.monotonic() - start
        _wait_until_quiet(outputs, node, quiet=1.5, limit=30.0)
        return LiveRun(list(outputs), published, seconds)
    finally:
        node.stop()
        executor.shutdown()
        try_shutdown(context=context)
