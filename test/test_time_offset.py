"""Camera stamp offset from the images: recordings rendered at the cameras' true capture times,
stamped with known offsets; the estimate must land within 5 ms. No ROS."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rgbt_tracking_ros.timing.monitor import KEYS, OffsetMonitor
from rgbt_tracking_ros.timing.offset import OffsetConfig, OffsetEstimator, change_image, region_change
from rgbt_tracking_ros.timing.recordings import (
    CameraTiming,
    InterpolatedVideo,
    PanningScene,
    RecordedFrame,
    sample_recording,
)

MS = 1_000_000
SECONDS = 8.0
TOLERANCE_MS = 5.0
SHARED = Path(os.environ.get("RGBT_SHARED_DATA", "/work/shared/data"))


@pytest.fixture(scope="module")
def scene_frames():
    """True-time renders of one scene: RGB at 30 Hz; thermal at 30 Hz (13 ms out of phase) and
    9 Hz. Offsets only change stamps, so each camera is rendered once."""
    scene = PanningScene(seed=1, size=(160, 120))
    rgb = sample_recording(scene.render, SECONDS, CameraTiming(30), CameraTiming(1e-3, phase=SECONDS))
    rgb = [f for f in rgb if f.camera == "rgb"]
    thermal = {}
    for rate in (30, 9):
        frames = sample_recording(scene.render, SECONDS, CameraTiming(1e-3, phase=SECONDS),
                                  CameraTiming(rate, phase=0.013))
        thermal[rate] = [f for f in frames if f.camera == "thermal"]
    return rgb, thermal


def feed(estimator, rgb, thermal, thermal_shift_ns=0, rgb_shift_ns=0, jitter_ns=0, seed=0):
    rng = np.random.default_rng(seed)
    events = [(f.stamp + rgb_shift_ns, "rgb", f.image) for f in rgb]
    events += [(f.stamp + thermal_shift_ns, "thermal", f.image) for f in thermal]
    if jitter_ns:
        events = [(s + int(rng.integers(-jitter_ns, jitter_ns + 1)), c, i) for s, c, i in events]
    for stamp, camera, image in sorted(events, key=lambda e: e[0]):
        (estimator.add_rgb if camera == "rgb" else estimator.add_thermal)(stamp, image)
    return estimator


@pytest.mark.parametrize("thermal_rate", [30, 9])
@pytest.mark.parametrize("offset_ms", [0, 20, 40, 100])
def test_known_offsets_are_found_within_5_ms(scene_frames, thermal_rate, offset_ms):
    rgb, thermal = scene_frames
    estimator = feed(OffsetEstimator(OffsetConfig(window=SECONDS)), rgb, thermal[thermal_rate],
                     thermal_shift_ns=offset_ms * MS, jitter_ns=MS, seed=offset_ms)
    estimate = estimator.estimate()
    assert estimate is not None and estimate.reliable, estimate
    assert abs(estimate.offset_ms - offset_ms) <= TOLERANCE_MS, estimate
    assert estimate.thermal_offset(0.0) == pytest.approx(-estimate.offset)


def test_negative_offset_and_rgb_the_slower_camera(scene_frames):
    """RGB stamped 30 ms late (thermal 'earlier'); 9 Hz RGB beside 30 Hz thermal."""
    rgb, thermal = scene_frames
    # Swap the rates: RGB rendered at the 9 Hz camera's times, thermal at the 30 Hz one's.
    scene = PanningScene(seed=1, size=(160, 120))
    slow_rgb = [RecordedFrame("rgb", f.stamp, f.true_time, scene.render(f.true_time, "rgb")) for f in thermal[9]]
    fast_thermal = [RecordedFrame("thermal", f.stamp, f.true_time, scene.render(f.true_time, "thermal"))
                    for f in rgb]
    estimator = feed(OffsetEstimator(OffsetConfig(window=SECONDS)), slow_rgb, fast_thermal,
                     rgb_shift_ns=30 * MS)
    estimate = estimator.estimate()
    assert estimate.reliable and abs(estimate.offset_ms - (-30)) <= TOLERANCE_MS, estimate


def test_no_estimate_before_min_span_and_unreliable_without_motion():
    rng = np.random.default_rng(0)
    still = (rng.random((120, 160)) * 255).astype(np.uint8)
    estimator = OffsetEstimator(OffsetConfig(window=8.0, min_span=5.0))
    for i in range(240):
        stamp = i * 33_333_333
        estimator.add_rgb(stamp, np.clip(still + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8))
        # The same static scene, its own sensor noise: nothing moves, nothing to align.
        estimator.add_thermal(stamp + 5 * MS, (20000 + 10 * still.astype(np.float32) + rng.normal(0, 20, still.shape)).astype(np.uint16))
        if i == 100:
            assert estimator.estimate() is None  # 3.3 s < min_span
    estimate = estimator.estimate()
    assert estimate is not None and not estimate.reliable and estimate.correlation < 0.5


def test_change_image_and_region_change():
    image = np.zeros((96, 128, 3), np.uint8)
    image[:48] = 200
    small = change_image(image, (64, 48))
    assert small.shape == (48, 64) and abs(small.mean()) < 1e-5 and small.std() == pytest.approx(1, abs=1e-4)
    moved = change_image(np.roll(image, 8, axis=0), (64, 48))
    change = region_change(small, moved, (3, 3))
    assert change.shape == (9,) and change[:3].sum() > 0  # the edge moved in the top regions
    with pytest.raises(ValueError):
        change_image(np.zeros(5))


def test_config_is_checked():
    with pytest.raises(ValueError, match="window"):
        OffsetConfig(window=0)
    with pytest.raises(ValueError, match="min_span"):
        OffsetConfig(window=2, min_span=3)
    with pytest.raises(ValueError, match="grid"):
        OffsetConfig(grid=(40, 40))


def test_monitor_reports_warns_and_applies(scene_frames):
    rgb, thermal = scene_frames
    report = OffsetMonitor("report", slop=0.015, config=OffsetConfig(window=SECONDS), every=1.0)
    apply = OffsetMonitor("apply", slop=0.015, rgb_offset=0.0, thermal_offset=0.0,
                          config=OffsetConfig(window=SECONDS), every=1.0)
    off = OffsetMonitor("off", slop=0.015)
    events = sorted([(f.stamp, "rgb", f.image) for f in rgb]
                    + [(f.stamp + 40 * MS, "thermal", f.image) for f in thermal[9]], key=lambda e: e[0])
    for stamp, camera, image in events:
        for monitor in (report, apply, off):
            monitor.add(camera, stamp, image)
    assert [k for k, _ in report.values()] == list(KEYS) and all(v == "" for _, v in report.values()[:3])
    assert report.update() is None and report.estimate.reliable
    values = dict(report.values())
    assert abs(float(values["time_offset_ms"]) - 40) <= TOLERANCE_MS
    assert values["time_offset_applied"] == "no"
    warning = report.warning("/rgb", "/thermal")
    assert "/thermal stamps are" in warning and "later than /rgb" in warning and "thermal_offset" in warning

    correction = apply.update()
    assert correction is not None and abs(correction.thermal_offset + 0.040) <= TOLERANCE_MS / 1e3
    assert apply.warning() is None  # corrected: residual 0
    assert dict(apply.values())["time_offset_applied"] == f"{correction.thermal_offset:.4f}"
    assert apply.update() is None  # not due again yet

    assert off.update() is None and dict(off.values())["time_offset_applied"] == "off"
    assert off.warning() is None
    with pytest.raises(ValueError, match="mode"):
        OffsetMonitor("sometimes", slop=0.015)


def test_monitor_within_half_slop_does_not_warn(scene_frames):
    rgb, thermal = scene_frames
    monitor = OffsetMonitor("report", slop=0.015, rgb_offset=0.0, thermal_offset=-0.040,
                            config=OffsetConfig(window=SECONDS))
    for f in rgb:
        monitor.add("rgb", f.stamp, f.image)
    for f in thermal[30]:
        monitor.add("thermal", f.stamp + 40 * MS, f.image)
    monitor.update()
    assert abs(monitor.residual()) < 0.0075 and monitor.warning() is None


@pytest.mark.parametrize(("thermal_rate", "phase", "offset_ms"), [(30, 0.0, 40), (9, 0.013, 100)])
def test_real_sequence_interpolated_at_the_camera_times(thermal_rate, phase, offset_ms):
    """A real aerial video (UAV123 person11, 30 fps) as both cameras' scene; the thermal stand-in
    is inverted grey at half resolution. 9 Hz samples fall between video frames: blended."""
    folder = SHARED / "uav123_person11" / "img"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    video = InterpolatedVideo.from_folder(folder, fps=30, limit=241, size=(320, 240))
    frames = sample_recording(video.render, video.duration, CameraTiming(30),
                              CameraTiming(thermal_rate, offset=offset_ms / 1e3, phase=phase))
    estimator = OffsetEstimator(OffsetConfig(window=video.duration))
    for f in frames:
        (estimator.add_rgb if f.camera == "rgb" else estimator.add_thermal)(f.stamp, f.image)
    estimate = estimator.estimate()
    assert estimate.reliable and abs(estimate.offset_ms - offset_ms) <= TOLERANCE_MS, estimate


def test_bag_offset_command_on_a_from_sequence_bag(tmp_path, capsys):
    """A synthetic RGB-T sequence with camera motion, written as a bag by `bag from-sequence`
    with a 9 Hz thermal camera stamped 40 ms late; `bag offset` finds it, `bag evaluate`
    applies it."""
    pytest.importorskip("rosbags")
    from rgbt_tracking_ros import cli
    from rgbt_tracking_ros.data.synthetic import make_sequence, write_sequence

    sequence = make_sequence(5, frames=240, height=120, width=160, conditions=["camera_motion", "hot"])
    folder = write_sequence(sequence, tmp_path / "seq5")
    bag = tmp_path / "bag"
    assert cli.main(["bag", "from-sequence", str(folder), str(bag), "--dataset", "lasher", "-q",
                     "--thermal-offset", "0.04", "--thermal-rate", "9"]) == 0
    capsys.readouterr()
    assert cli.main(["bag", "offset", str(bag), "--window", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reliable"] and abs(report["offset_ms"] - 40) <= TOLERANCE_MS, report
    assert report["exceeds_half_slop"] and report["thermal_offset"] == pytest.approx(-0.04, abs=0.005)
    assert cli.main(["bag", "offset", str(bag), "--window", "8", "--thermal-offset", "-0.04"]) == 0
    text = capsys.readouterr().out
    assert "ms later than RGB stamps" in text and "warning" not in text
    # `bag evaluate` runs the node's runtime: with apply it pairs with the offset it finds.
    assert cli.main(["bag", "evaluate", str(bag), "--model", "csrt-rgb", "--json", "-q",
                     "--time-offset-estimation", "apply"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert float(report["time_offset_applied"]) == pytest.approx(-0.04, abs=0.005), report
    assert abs(float(report["time_offset_ms"]) - 40) <= TOLERANCE_MS


def test_diagnostics_carry_the_offset_and_warn_beyond_half_slop():
    from rgbt_tracking_ros.ros import diagnostics

    base = dict(elapsed_s=1.0, received_rgb=30, received_thermal=9, paired=9, dropped_rgb_total=0,
                dropped_thermal_total=0, stale_pairs_total=0, malformed_rgb_total=0,
                malformed_thermal_total=0, malformed_in_period=0, last_malformed=None, resets_total=0,
                last_pair_dt_s=0.0089, times=diagnostics.PeriodTimes(), model_errors_total=0,
                state="tracking", target_id="t", device="cpu", model="m", pairing="stamp_pairer")
    level, _, values = diagnostics.evaluate(diagnostics.Snapshot(**base))
    assert level == diagnostics.OK and all(dict(values)[key] == "" for key in KEYS)
    offset = [("time_offset_ms", "40.3"), ("time_offset_residual_ms", "40.3"),
              ("time_offset_correlation", "0.91"), ("time_offset_applied", "no")]
    level, message, values = diagnostics.evaluate(diagnostics.Snapshot(
        **base, time_offset=offset, time_offset_warning="the images say thermal stamps are 40 ms later"))
    assert level == diagnostics.WARN and "40 ms later" in message
    assert [k for k, _ in values] == list(diagnostics.KEYS) and dict(values)["time_offset_ms"] == "40.3"


def scene_events(seconds=11.0, thermal_late_ms=40):
    """(stamp, camera, true time): 30 Hz RGB, 9 Hz thermal stamped thermal_late_ms late."""
    start = 1_700_000_000 * 1_000_000_000
    events = [(start + round(i / 30 * 1e9), "rgb", i / 30) for i in range(int(seconds * 30))]
    events += [(start + round(i / 9 * 1e9) + thermal_late_ms * MS, "thermal", i / 9)
               for i in range(int(seconds * 9))]
    return sorted(events)


@pytest.mark.parametrize("mode", ["report", "apply"])
def test_runtime_reports_warns_and_applies_the_offset(mode):
    """runtime/core.py: frames entering the runtime feed the estimate; check_time_offset (the
    node's timer, bag evaluate's per-frame call) estimates, and in apply mode moves the
    pairer's thermal_offset; the snapshot carries the keys and the WARN."""
    from rgbt_tracking_ros.runtime import health
    from rgbt_tracking_ros.runtime.core import ImageFrame, TrackingRuntime
    from rgbt_tracking_ros.runtime.parameters import TIME_OFFSET_CHOICES, parse_parameters
    from rgbt_tracking_ros.timing.monitor import MODES

    assert TIME_OFFSET_CHOICES == MODES
    params, _ = parse_parameters({"time_offset_estimation": mode, "slop": 0.015})
    runtime = TrackingRuntime(object(), params, sink=lambda frames: None)
    scene = PanningScene(seed=1, size=(160, 120))
    notes = []
    for stamp, camera, true in scene_events():
        runtime.image(camera, ImageFrame(None, scene.render(true, camera), stamp))
        notes += runtime.check_time_offset().notes
    level, message, values = health.evaluate(runtime.snapshot(
        received=(0, 0), malformed=(0, 0), last_malformed=None, device="cpu", model="m",
        backend="stamp_pairer", sync_warning=None))
    values = dict(values)
    assert abs(float(values["time_offset_ms"]) - 40) <= TOLERANCE_MS
    thermal_offset = runtime.pairing.config.thermal_offset
    if mode == "apply":
        assert abs(thermal_offset + 0.040) <= TOLERANCE_MS / 1e3
        assert values["time_offset_applied"] == f"{thermal_offset:.4f}"
        assert any("thermal_offset set to" in note for note in notes)
        assert level == health.OK
        # A live slop change keeps the applied offset; offsets set by hand replace it.
        runtime.update(parse_parameters({"time_offset_estimation": mode, "slop": 0.02})[0])
        assert runtime.pairing.config.thermal_offset == thermal_offset
        runtime.update(parse_parameters({"time_offset_estimation": mode, "slop": 0.02,
                                         "thermal_offset": -0.01})[0])
        assert runtime.pairing.config.thermal_offset == -0.01
        assert dict(runtime.time_offset.values())["time_offset_applied"] == "no"
    else:
        assert thermal_offset == 0.0 and values["time_offset_applied"] == "no" and not notes
        assert level == health.WARN and "ms later than" in message and "thermal_offset" in message


def test_node_pairing_feeds_the_runtime_and_apply_forces_the_own_pairer():
    """ros/pairing.py only wires: with apply the own pairer is chosen (message_filters cannot
    shift stamps), its image callbacks feed the runtime, whose check moves thermal_offset."""
    from ros_availability import require_ros

    require_ros("sensor_msgs.msg")
    from rgbt_tracking_ros.codec import numpy_to_image
    from rgbt_tracking_ros.ros.pairing import OwnPairing, create_pairing
    from rgbt_tracking_ros.runtime.core import TrackingRuntime
    from rgbt_tracking_ros.runtime.parameters import parse_parameters

    class Logger:
        def warning(self, text, **_):
            pass

        info = error = warning

    class Node:
        def __init__(self):
            self.logger, self.subscriptions = Logger(), {}

        def get_logger(self):
            return self.logger

        def resolve_topic_name(self, topic):
            return "/" + topic

        def create_subscription(self, msg_type, topic, callback, qos, callback_group=None, **_):
            self.subscriptions[topic] = callback
            return topic

    def message(array, encoding, stamp):
        msg = numpy_to_image(array, encoding)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        return msg

    params, _ = parse_parameters({"time_offset_estimation": "apply", "use_message_filters": True})
    node = Node()
    runtime = TrackingRuntime(object(), params, sink=lambda frames: None)
    pairing, why = create_pairing(node, params, runtime, lambda result: None)
    assert isinstance(pairing, OwnPairing) and "time_offset_estimation is apply" in why
    pairing.start()
    scene = PanningScene(seed=1, size=(160, 120))
    for stamp, camera, true in scene_events():
        encoding = "rgb8" if camera == "rgb" else "mono16"
        node.subscriptions[f"{camera}/image"](message(scene.render(true, camera), encoding, stamp))
    notes = runtime.check_time_offset().notes
    assert abs(runtime.pairing.config.thermal_offset + 0.040) <= TOLERANCE_MS / 1e3
    assert any("thermal_offset set to" in note for note in notes)


def test_rendered_recording_written_as_a_bag_and_estimated_from_it(tmp_path, scene_frames):
    """recordings.write_bag: true-time renders (30 Hz RGB, 9 Hz thermal 20 ms late) in a bag;
    bags/offset.py reads Image messages back and finds the offset."""
    pytest.importorskip("rosbags")
    from rgbt_tracking_ros.bags.offset import estimate_bag_offset
    from rgbt_tracking_ros.timing.recordings import write_bag

    rgb, thermal = scene_frames
    late = [RecordedFrame("thermal", f.stamp + 20 * MS, f.true_time, f.image) for f in thermal[9]]
    bag = write_bag(rgb + late, tmp_path / "bag")
    estimate, n_rgb, n_thermal = estimate_bag_offset(bag, config=OffsetConfig(window=SECONDS))
    assert (n_rgb, n_thermal) == (len(rgb), len(late))
    assert estimate.reliable and abs(estimate.offset_ms - 20) <= TOLERANCE_MS, estimate
    with pytest.raises(FileExistsError):
        write_bag(rgb, bag)
