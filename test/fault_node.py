"""The tracker node with a fault injected into the tracker, for the DDS tests (a separate
process, as a user runs the node): ``python test/fault_node.py FAULT -- --ros-args ...``.

FAULT: ``raise`` (track() raises on every frame after the warm-up), ``slow:SECONDS`` (track() takes that long),
``init-fails-width:W`` (initialize() raises for boxes W pixels wide).
"""
from __future__ import annotations

import sys
import time


def main() -> int:
    fault, argv = sys.argv[1], sys.argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    from rgbt_tracking_ros.tracker.tracker import RGBTTracker

    track, initialize = RGBTTracker.track, RGBTTracker.initialize
    if fault == "raise":
        calls = []

        def broken(self, rgb, thermal):
            calls.append(1)
            if len(calls) == 1:  # the warm-up at configure
                return track(self, rgb, thermal)
            raise RuntimeError("injected model failure")
        RGBTTracker.track = broken
    elif fault.startswith("slow:"):
        delay = float(fault.split(":", 1)[1])

        def slow(self, rgb, thermal):
            time.sleep(delay)
            return track(self, rgb, thermal)
        RGBTTracker.track = slow
    elif fault.startswith("init-fails-width:"):
        width = float(fault.split(":", 1)[1])

        def failing(self, rgb, thermal, box):
            if abs(float(box[2]) - width) < 1e-6:
                raise ValueError(f"injected initialisation failure for width {width:g}")
            return initialize(self, rgb, thermal, box)
        RGBTTracker.initialize = failing
    else:
        raise SystemExit(f"unknown fault {fault!r}")
    from rgbt_tracking_ros.ros.node import main as node_main

    return node_main([sys.argv[0], *argv])


if __name__ == "__main__":
    sys.exit(main())
