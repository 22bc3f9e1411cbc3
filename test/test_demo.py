"""The main command: the node in its own process tracks a replayed RGB-T recording over DDS,
and its recorded outputs are scored, drawn and plotted."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from ros_availability import require_ros

from rgbt_tracking_ros.bags.messages import TRACKED_OBJECT, header, typestore
from rgbt_tracking_ros.bags.score import read_outputs
from rgbt_tracking_ros.bags.write import write_recording
from rgbt_tracking_ros.cli import main


def _tracked(stamp: int, box: list[float], state: int) -> bytes:
    store = typestore()
    types = store.types
    msg = types[TRACKED_OBJECT](
        header=header(stamp, "rgb_camera"), target_id="t", state=state,
        x=box[0], y=box[1], width=box[2], height=box[3], confidence=0.8, age=1, frames_since_seen=0, reason="",
        pair_dt=types["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
    )
    return bytes(store.serialize_cdr(msg, TRACKED_OBJECT))


def test_a_recording_of_live_outputs_reads_back(tmp_path):
    outputs = [(1_000 + i, _tracked(100 + i, [10.0 + i, 20.0, 30.0, 40.0], 2)) for i in range(3)]
    outputs.append((2_000, _tracked(200, [0.0, 0.0, 0.0, 0.0], 3)))  # STOPPED: no target
    write_recording(tmp_path / "rec", "/tracked_object", TRACKED_OBJECT, outputs)
    boxes = read_outputs(tmp_path / "rec", "/tracked_object")
    assert sorted(boxes) == [100, 101, 102]
    np.testing.assert_allclose(boxes[102], [12.0, 20.0, 30.0, 40.0])


@pytest.fixture
def ros_domain(monkeypatch):
    require_ros()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(10 + (os.getpid() + 53) % 91))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)
    for name in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        monkeypatch.delenv(name, raising=False)  # the demo picks the large-data profile itself


def test_the_node_tracks_a_replayed_recording(ros_domain, tmp_path, capsys):
    out = tmp_path / "demo"
    # A 10 Hz camera, so the node keeps up on a shared 2-core machine, where a test run may
    # slow it below 30 Hz (it would then drop the pairs that waited over max_pair_wait).
    assert main(["demo", "--source", "synthetic", "--frames", "45", "--fps", "10", "--out", str(out)]) == 0
    summary = json.loads((out / "scores.json").read_text())
    answered = summary["answered"]
    assert answered["expected"] == 45
    assert answered["unanswered"] < 0.3 * answered["expected"], f"the node answered too few pairs: {summary}"
    assert answered["sr"] > 0.4 and summary["live"]["sr"] > 0.4, f"the shipped model lost the target: {summary}"
    video = cv2.VideoCapture(str(out / "demo.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 45
    video.release()
    assert (out / "demo_success.png").stat().st_size > 0 and (out / "demo_precision.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "compact_rgbt node, live" in printed and "csrt-rgb" in printed
