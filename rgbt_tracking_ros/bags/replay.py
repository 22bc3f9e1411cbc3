"""Publish a bag to live topics with its original timing (`rgbt-track bag replay`), to evaluate
the running node on a recording. Needs rclpy and the bag's message packages; nothing else here
imports ROS, so the rest of the bag tools work without it.

Compressed bags (`from-sequence`'s default) go out as recorded: sensor_msgs/CompressedImage on
`<topic>/compressed`, which a node subscribes to with its `compressed` transport (the
rgbt_tracking_ros node: `rgb_transport:=compressed`, `thermal_transport:=compressed`).

Messages go out at their bag (receive) times, scaled by `rate`; raw CDR from rosbags becomes an
rclpy message with `rclpy.serialization.deserialize_message`. With `clock`, /clock carries each
message's bag time just before it is published (for nodes with use_sim_time). Publishers are
reliable with depth 10, which best-effort subscribers (sensor_data QoS) accept too.
"""
from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .read import open_bag

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.publisher import Publisher

_QOS_DEPTH = 10


def _rclpy() -> ModuleType:
    try:
        import rclpy
    except ImportError as exc:
        raise RuntimeError(
            "bag replay needs rclpy: source a ROS 2 install (or `. install/ros_env.sh` after `make ros`)"
        ) from exc
    return rclpy


def message_class(msgtype: str) -> type:
    """The rclpy message class of 'pkg/msg/Name' (rosidl_runtime_py where installed, else by import)."""
    try:
        from rosidl_runtime_py.utilities import get_message

        found: type = get_message(msgtype)
        return found
    except ImportError:
        pass
    except (AttributeError, ValueError) as exc:
        raise RuntimeError(f"no Python message class for {msgtype}: {exc}") from exc
    package, kind, name = msgtype.split("/")
    try:
        imported: type = getattr(importlib.import_module(f"{package}.{kind}"), name)
        return imported
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"no Python message class for {msgtype}: install or source its package") from exc


def replay_bag(
    path: str | os.PathLike[str],
    rate: float = 1.0,
    loop: bool = False,
    clock: bool = False,
    topics: Sequence[str] | None = None,
    node: Node | None = None,
    wait_for_subscribers: float = 0.0,
    on_message: Callable[[str], None] | None = None,
) -> int:
    """Publish the bag's messages (all, or `topics`) in receive order; returns how many were sent.

    With `node` the caller's node publishes (its context decides the domain); otherwise rclpy
    is initialised here and shut down at the end. Stops cleanly on Ctrl-C.
    """
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    rclpy = _rclpy()
    from rclpy.serialization import deserialize_message

    own = node is None
    if node is None:
        rclpy.init()
        node = rclpy.create_node("rgbt_bag_replay")
    sent = 0
    try:
        with open_bag(path) as reader:
            present = {c.topic for c in reader.connections}
            if topics is not None:  # a camera's base topic selects its <topic>/compressed too
                topics = [t if t in present or f"{t.rstrip('/')}/compressed" not in present
                          else f"{t.rstrip('/')}/compressed" for t in topics]
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            missing = sorted(set(topics or ()) - {c.topic for c in conns})
            if missing:
                raise ValueError(f"topics not in the bag: {', '.join(missing)}")
            classes = {c.topic: message_class(c.msgtype) for c in conns}
            publishers = {topic: node.create_publisher(cls, topic, _QOS_DEPTH) for topic, cls in classes.items()}
            clock_pub = _clock_publisher(node) if clock else None
            _wait_for_subscribers(publishers.values(), wait_for_subscribers)
            while True:
                start_wall, start_bag = time.monotonic(), None
                for conn, timestamp, raw in reader.messages(connections=conns):
                    start_bag = timestamp if start_bag is None else start_bag
                    delay = start_wall + (timestamp - start_bag) / 1e9 / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    if clock_pub is not None:
                        clock_pub.publish(_clock_message(timestamp))
                    publishers[conn.topic].publish(deserialize_message(bytes(raw), classes[conn.topic]))
                    sent += 1
                    if on_message is not None:
                        on_message(conn.topic)
                if not loop:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        if own:
            node.destroy_node()
            rclpy.try_shutdown()
    return sent


def _clock_publisher(node: Node) -> Publisher:
    from rosgraph_msgs.msg import Clock

    return node.create_publisher(Clock, "/clock", _QOS_DEPTH)


def _clock_message(timestamp: int) -> Any:
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    sec, nanosec = divmod(timestamp, 1_000_000_000)
    return Clock(clock=Time(sec=sec, nanosec=nanosec))


def _wait_for_subscribers(publishers: Iterable[Publisher], timeout: float) -> None:
    """Wait until every topic has a subscriber or `timeout` s pass: earlier messages would be lost."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pub.get_subscription_count() == 0 for pub in publishers):
        time.sleep(0.02)
