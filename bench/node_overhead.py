#!/usr/bin/env python3
"""How much the ROS node adds on top of the model: 640x512 RGB + thermal at 30 Hz over DDS.

Starts the synthetic camera and the node (tiny AINet on CPU) as separate processes and
listens to `tracked_object` and `/diagnostics` in this one. Per output message, end-to-end
latency = receive time - RGB image stamp (one host clock). The node's diagnostics report its
mean model time per period; overhead = latency - that mean (the message carries no per-frame
model time). Frames dropped = RGB frames sent minus boxes received.

    . install/ros_env.sh && python bench/node_overhead.py [--seconds 20] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "config" / "fastdds_large_data.xml"


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(random.randint(10, 100))
    env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    return env


def _tiny_checkpoint(folder: Path) -> Path:
    from rgbt_tracking_ros.models import build_model
    from rgbt_tracking_ros.models.checkpoints import save_checkpoint

    model = build_model("ainet_tiny")
    path = folder / "ainet_tiny.pt"
    save_checkpoint(path, model, model.config)
    return path


def _listen(seconds: float, latencies: list[float], inference_ms: list[float]) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node

    from rgbt_tracking_ros.msg import TrackedObject

    def on_box(msg: TrackedObject) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        latencies.append(time.time() - stamp)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            for item in status.values:
                if item.key == "inference_ms_mean" and float(item.value) > 0:
                    inference_ms.append(float(item.value))

    rclpy.init()
    node = Node("node_overhead_bench")
    node.create_subscription(TrackedObject, "tracked_object", on_box, 100)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="camera run time")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    from rgbt_tracking_ros.data.synthetic import make_sequence

    env = _environment()
    os.environ.update(env)
    frames = int(args.seconds * args.rate)
    first_box = make_sequence(1000, frames=frames, height=512, width=640).boxes[0]
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = _tiny_checkpoint(Path(folder))
        box = "[" + ", ".join(f"{v:.2f}" for v in first_box) + "]"
        node = subprocess.Popen(
            [sys.executable, "-m", "rgbt_tracking_ros.ros.node", "--ros-args", "-p", f"checkpoint:={checkpoint}",
             "-p", "device:=cpu", "-p", f"initial_box:={box}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        camera = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "synthetic_camera.py"), "--width", "640", "--height", "512",
             "--rate", str(args.rate), "--frames", str(frames), "--wait-for-subscribers", "30"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        latencies: list[float] = []
        inference_ms: list[float] = []
        try:
            _listen(args.seconds + 35, latencies, inference_ms)
        finally:
            for process in (camera, node):
                process.terminate()
                process.wait(timeout=20)
    if not latencies:
        print("no tracked_object messages arrived", file=sys.stderr)
        return 1
    latency_ms = np.array(latencies) * 1000
    model_ms = statistics.mean(inference_ms) if inference_ms else float("nan")
    overhead = latency_ms - model_ms
    figures = {
        "frames_sent": frames,
        "boxes_received": len(latencies),
        "frames_dropped": frames - len(latencies),
        "latency_ms_p50": float(np.percentile(latency_ms, 50)),
        "latency_ms_p99": float(np.percentile(latency_ms, 99)),
        "model_ms_mean": model_ms,
        "overhead_ms_p50": float(np.percentile(overhead, 50)),
        "overhead_ms_p99": float(np.percentile(overhead, 99)),
        "resolution": "640x512",
        "rate_hz": args.rate,
        "device": "cpu",
        "model": "ainet_tiny",
    }
    for key, value in figures.items():
        print(f"{key:>16}  {value:.1f}" if isinstance(value, float) else f"{key:>16}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
