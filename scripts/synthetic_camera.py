#!/usr/bin/env python3
"""Publish a synthetic RGB + thermal camera pair: a warm target moving over a textured scene.

Try the node without cameras, and drive the node's DDS tests:

    . install/ros_env.sh
    python scripts/synthetic_camera.py --rate 15 --loop &
    python -m rgbt_tracking_ros.ros.node --ros-args -p checkpoint:=model.pt -p device:=cpu \\
        -p initial_box:="[x, y, w, h]"      # the first box of the BOXES line it prints

RGB frames go out as rgb8 ``sensor_msgs/Image``, thermal frames as mono16 (radiometric
counts), or with ``--transport compressed`` as JPEG and 16-bit PNG ``CompressedImage`` on
``<topic>/compressed``; best effort like camera drivers, stamped with the publish time
(the thermal stamp a few ms off the RGB one, as two real cameras are). For every frame the script prints
``FRAME <index> <rgb stamp ns> <what>`` so a test can match the node's outputs to the ground
truth by stamp. Fault options imitate what robots see: malformed images, a thermal camera that
stops for a while, stamps that jump back (a looped bag). It exits after the sequence (or
``--duration``), or when its stdin closes with ``--stdin-eof-stops``.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import cv2
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from rgbt_tracking_ros.codec import numpy_to_image
from rgbt_tracking_ros.data.synthetic import make_sequence

MALFORMED_KINDS = ("short_data", "unknown_encoding", "zero_size")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1000, help="synthetic sequence seed")
    parser.add_argument("--frames", type=int, default=90, help="frames in the sequence")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--rate", type=float, default=15.0, help="frames per second")
    parser.add_argument("--rgb-topic", default="rgb/image")
    parser.add_argument("--thermal-topic", default="thermal/image")
    parser.add_argument("--rgb-frame-id", default="rgb_camera_optical_frame")
    parser.add_argument("--thermal-frame-id", default="thermal_camera_optical_frame")
    parser.add_argument("--thermal-skew", type=float, default=0.002,
                        help="thermal stamp minus RGB stamp, seconds")
    parser.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data")
    parser.add_argument("--transport", choices=("raw", "compressed"), default="raw",
                        help="compressed: JPEG RGB and 16-bit PNG thermal CompressedImage on "
                             "<topic>/compressed, as image_transport names them")
    parser.add_argument("--hold-first", type=float, default=0.0,
                        help="seconds to repeat the first frame (a still target) before moving")
    parser.add_argument("--loop", action="store_true",
                        help="play the sequence forwards and backwards until --duration")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (0: after the sequence)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0,
                        help="wait up to this many seconds for a subscriber on both topics")
    parser.add_argument("--malformed-at", type=int, action="append", default=[],
                        help="publish malformed images at this published frame count "
                             "(repeatable; cycles through " + ", ".join(MALFORMED_KINDS) + ")")
    parser.add_argument("--malformed-camera", choices=("alternate", "rgb", "thermal"),
                        default="alternate", help="which camera sends the malformed images")
    parser.add_argument("--thermal-pause", nargs=2, type=float, metavar=("AT_S", "FOR_S"),
                        help="stop the thermal camera AT_S seconds after the start for FOR_S s")
    parser.add_argument("--jump-back", nargs=2, type=float, metavar=("AT_S", "BY_S"),
                        help="AT_S seconds after the start, stamps jump back by BY_S seconds")
    parser.add_argument("--stdin-eof-stops", action="store_true",
                        help="stop when stdin closes (when a test runs this script)")
    return parser.parse_args(argv)


def _frame_order(frames: int, loop: bool) -> list[int]:
    """Indices of one pass: forwards, then backwards when looping (no teleporting target)."""
    forwards = list(range(frames))
    return forwards + forwards[-2:0:-1] if loop else forwards


def _compressed(image: np.ndarray, extension: str, fmt: str) -> CompressedImage:
    ok, encoded = cv2.imencode(extension, image)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.dtype} frame as {extension}")
    msg = CompressedImage(format=fmt)
    msg.data = encoded.tobytes()
    return msg


def _malformed(kind: str, header: Header, compressed: bool) -> Image | CompressedImage:
    if compressed:
        data = {"short_data": b"\xff\xd8 not a jpeg", "unknown_encoding": bytes(16),
                "zero_size": b""}[kind]
        fmt = "16UC1; compressedDepth" if kind == "unknown_encoding" else "jpeg"
        return CompressedImage(header=header, format=fmt, data=data)
    msg = Image(header=header)
    if kind == "short_data":
        msg.height, msg.width, msg.encoding, msg.step = 240, 320, "rgb8", 960
        msg.data = bytes(1000)
    elif kind == "unknown_encoding":
        msg.height, msg.width, msg.encoding, msg.step = 4, 4, "bayer_weird16", 8
        msg.data = bytes(32)
    else:
        msg.height, msg.width, msg.encoding, msg.step = 0, 0, "mono16", 0
    return msg


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):  # stop cleanly: no leaked shared memory
        signal.signal(number, lambda *_: stop.set())
    if args.stdin_eof_stops:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

    sequence = make_sequence(args.seed, frames=args.frames, height=args.height, width=args.width)
    print("BOXES " + json.dumps(np.round(sequence.boxes, 3).tolist()), flush=True)

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("synthetic_camera")
    qos = (qos_profile_sensor_data if args.qos == "sensor_data"
           else QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    if args.transport == "compressed":
        rgb_pub = node.create_publisher(CompressedImage, f"{args.rgb_topic}/compressed", qos)
        thermal_pub = node.create_publisher(CompressedImage, f"{args.thermal_topic}/compressed",
                                            qos)
        rgb_msgs = [_compressed(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), ".jpg",
                                "rgb8; jpeg compressed bgr8") for frame in sequence.rgb]
        thermal_msgs = [_compressed(frame, ".png", "mono16; png compressed mono16")
                        for frame in sequence.thermal]
    else:
        rgb_pub = node.create_publisher(Image, args.rgb_topic, qos)
        thermal_pub = node.create_publisher(Image, args.thermal_topic, qos)
        rgb_msgs = [numpy_to_image(frame, "rgb8") for frame in sequence.rgb]
        thermal_msgs = [numpy_to_image(frame, "mono16") for frame in sequence.thermal]
    try:
        deadline = time.monotonic() + args.wait_for_subscribers
        while time.monotonic() < deadline and not stop.is_set() and not (
                rgb_pub.get_subscription_count() and thermal_pub.get_subscription_count()):
            time.sleep(0.05)
        print("READY", flush=True)
        _publish(args, node, rgb_pub, thermal_pub, rgb_msgs, thermal_msgs, stop)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print("DONE", flush=True)
    return 0


def _publish(args: argparse.Namespace, node: rclpy.node.Node, rgb_pub: rclpy.publisher.Publisher,
             thermal_pub: rclpy.publisher.Publisher, rgb_msgs: list[Image | CompressedImage],
             thermal_msgs: list[Image | CompressedImage], stop: threading.Event) -> None:
    """Publish at the rate until the sequence ends, --duration passes or stop is set."""
    order = _frame_order(len(rgb_msgs), args.loop)
    period = 1.0 / args.rate
    hold = int(round(args.hold_first * args.rate))
    start = next_time = time.monotonic()
    malformed_at = set(args.malformed_at)
    compressed = args.transport == "compressed"
    malformed_count = 0
    count = 0
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if args.duration and elapsed >= args.duration:
            break
        position = max(0, count - hold)
        if position >= len(order) and not args.loop:
            break
        index = order[position % len(order)]
        now_ns = node.get_clock().now().nanoseconds  # capture time = publish time
        if args.jump_back and elapsed >= args.jump_back[0]:
            now_ns -= round(args.jump_back[1] * 1e9)
        thermal_ns = now_ns + round(args.thermal_skew * 1e9)
        rgb_header = Header(stamp=_stamp(now_ns), frame_id=args.rgb_frame_id)
        thermal_header = Header(stamp=_stamp(thermal_ns), frame_id=args.thermal_frame_id)
        thermal_paused = bool(args.thermal_pause) and (
            args.thermal_pause[0] <= elapsed < args.thermal_pause[0] + args.thermal_pause[1])
        what = "ok"
        if count in malformed_at:
            kind = MALFORMED_KINDS[malformed_count % len(MALFORMED_KINDS)]
            malformed_count += 1
            # Alternate the camera that misbehaves: the 1st, 3rd, ... fault hits RGB.
            if (args.malformed_camera == "rgb"
                    or (args.malformed_camera == "alternate" and malformed_count % 2)):
                rgb_pub.publish(_malformed(kind, rgb_header, compressed))
                what = f"malformed_rgb_{kind}"
            else:
                thermal_pub.publish(_malformed(kind, thermal_header, compressed))
                what = f"malformed_thermal_{kind}"
        if not what.startswith("malformed_rgb"):
            rgb_msg = rgb_msgs[index]
            rgb_msg.header = rgb_header
            rgb_pub.publish(rgb_msg)
        if thermal_paused:
            what += "_thermal_paused"
        elif not what.startswith("malformed_thermal"):
            thermal_msg = thermal_msgs[index]
            thermal_msg.header = thermal_header
            thermal_pub.publish(thermal_msg)
        print(f"FRAME {index} {now_ns} {what}", flush=True)
        count += 1
        # One period later; after a late frame the next waits at least half a period and missed
        # periods are skipped (a camera drops frames), so frames never go out in a burst of
        # closely stamped ones that could pair across frames.
        next_time = max(next_time + period, time.monotonic() + period / 2)
        time.sleep(max(0.0, next_time - time.monotonic()))


def _stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


if __name__ == "__main__":
    sys.exit(main())
