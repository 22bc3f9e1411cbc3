"""The node's helper modules without DDS traffic: parameters, device policy, the worker's
mailbox, the tracking session (with a fake tracker), message and diagnostics building, and the
pairing front end driven with real image messages through a fake node.

Tests that need rclpy or the built interfaces skip without them, unless RGBT_REQUIRE_ROS=1.
"""
from __future__ import annotations

import itertools
import os
import sys
import threading
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ros_availability import require_ros

from rgbt_tracking_ros.ros import diagnostics, messages
from rgbt_tracking_ros.ros.device import DeviceError, resolve_device
from rgbt_tracking_ros.ros.pairing import (
    MessageFiltersPairing,
    OwnPairing,
    create_pairing,
    rgb_array,
    thermal_array,
)
from rgbt_tracking_ros.ros.parameters import (
    SPECS,
    NodeParameters,
    ParameterError,
    check_value,
    parse_parameters,
)
from rgbt_tracking_ros.runtime.core import TrackingRuntime
from rgbt_tracking_ros.runtime.mailbox import PairMailbox
from rgbt_tracking_ros.runtime.session import Frames, State

pytestmark = pytest.mark.filterwarnings("ignore:module 'sre_:DeprecationWarning")


@pytest.fixture
def ros():
    """Skips (or fails with RGBT_REQUIRE_ROS=1) when rclpy or the interfaces are missing."""
    require_ros("sensor_msgs.msg")


_DOMAINS = itertools.count()


@pytest.fixture
def rclpy_context(ros):
    """An rclpy context in a domain of its own (nodes here exchange no messages)."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=10 + (os.getpid() + 50 + next(_DOMAINS)) % 91)
    yield context
    rclpy.shutdown(context=context)


# ----------------------------------------------------------------------------- parameters


def test_defaults_parse_and_match_the_dataclass():
    params, warnings = parse_parameters({})
    assert warnings == []
    assert [spec.name for spec in SPECS] == list(NodeParameters.__dataclass_fields__)
    assert params.queue_size == 10 and params.slop == 0.015 and params.device == "cuda:0"
    assert params.initial_box == () and params.click_box_size == (64.0, 64.0)
    config = params.pairing_config()
    assert (config.slop, config.queue_size, config.jump_back_tolerance) == (0.015, 10, 0.5)
    assert params.homography_matrix() is None and params.thermal_value_range() is None


def test_integers_are_accepted_for_doubles():
    params, _ = parse_parameters({"slop": 0, "initial_box": [100, 80, 40, 40],
                                  "thermal_mode": "fixed", "thermal_range": [20000, 30000]})
    assert params.slop == 0.0 and isinstance(params.slop, float)
    assert params.initial_box == (100.0, 80.0, 40.0, 40.0)
    assert params.thermal_value_range() == (20000.0, 30000.0)
    assert params.tracker_config("cpu", False).thermal_range == (20000.0, 30000.0)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ParameterError) as info:
        parse_parameters({"slop": 5.0, "queue_size": 0, "image_qos": "best_effort",
                          "initial_box": [1.0, 2.0, 3.0], "half": "yes"})
    text = str(info.value)
    for expected in ("slop must be in [0, 1]", "queue_size must be in [1, 100]",
                     "image_qos must be one of sensor_data, reliable, system_default",
                     "initial_box needs 0 or 4 values", "half must be true or false"):
        assert expected in text


@pytest.mark.parametrize("values, expected", [
    ({"thermal_mode": "fixed"}, "thermal_mode 'fixed' needs thermal_range"),
    ({"thermal_mode": "fixed", "thermal_range": [3.0, 1.0]}, "hi > lo"),
    ({"homography": [0.0] * 9}, "homography: homography is singular"),
    ({"homography": [1.0, 2.0]}, "homography needs 0 or 9 values"),
    ({"initial_box": [1.0, 2.0, 0.0, 5.0]}, "positive width and height"),
    ({"initial_box": [float("nan"), 2.0, 3.0, 5.0]}, "finite numbers"),
    ({"jump_back_tolerance": 0.0}, "jump_back_tolerance must be > 0"),
    ({"rgb_topic": "cam", "thermal_topic": "cam"}, "are both 'cam'"),
    ({"click_box_size": [10.0, -1.0]}, "click_box_size must be positive"),
    ({"device": " "}, "device must not be empty"),
])
def test_invalid_combinations_are_named(values, expected):
    with pytest.raises(ParameterError, match=None) as info:
        parse_parameters(values)
    assert expected in str(info.value)


def test_thermal_range_without_fixed_mode_only_warns():
    params, warnings = parse_parameters({"thermal_range": [0.0, 1.0]})
    assert warnings == ["thermal_range is ignored with thermal_mode 'minmax'"]
    assert params.thermal_value_range() is None


def test_check_value_converts_and_rejects():
    spec = {s.name: s for s in SPECS}
    assert check_value(spec["homography"], None) == ((), None)
    assert check_value(spec["queue_size"], True)[1] == "queue_size must be an integer, got True"
    assert "finite" in check_value(spec["slop"], float("inf"))[1]
    assert check_value(spec["homography"], np.eye(3).ravel())[0] == tuple(np.eye(3).ravel())


def test_declared_parameters_have_descriptions_ranges_and_tolerate_bad_overrides(rclpy_context):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from rgbt_tracking_ros.ros.parameters import declare_parameters, read_parameters

    overrides = [Parameter("slop", value=5.0), Parameter("initial_box", value=[1, 2, 30, 40]),
                 Parameter("queue_size", value="ten"), Parameter("lost_threshold", value=0)]
    node = Node("params_under_test", context=rclpy_context, parameter_overrides=overrides)
    try:
        errors = declare_parameters(node)
        assert set(errors) == {"slop", "queue_size"}, errors
        values = read_parameters(node)
        assert values["slop"] == 0.015  # the default replaced the bad value
        params, _ = parse_parameters(values)
        assert params.initial_box == (1.0, 2.0, 30.0, 40.0) and params.lost_threshold == 0.0
        descriptor = node.describe_parameter("slop")
        assert descriptor.description and descriptor.floating_point_range[0].to_value == 1.0
        assert node.describe_parameter("queue_size").integer_range[0].to_value == 100
        assert "raw, compressed" in node.describe_parameter("rgb_transport").additional_constraints
        # ros2 param set goes through the same check; a valid value clears the error.
        assert not node.set_parameters([Parameter("slop", value=2.0)])[0].successful
        assert node.set_parameters([Parameter("slop", value=0.02)])[0].successful
        assert set(errors) == {"queue_size"}
    finally:
        node.destroy_node()


def test_a_node_with_a_missing_checkpoint_fails_configure_without_raising(rclpy_context, tmp_path):
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from rgbt_tracking_ros.ros.node import RGBTTrackerNode

    node = RGBTTrackerNode(context=rclpy_context, parameter_overrides=[
        Parameter("checkpoint", value=str(tmp_path / "missing.pt")),
        Parameter("device", value="cpu"), Parameter("autostart", value=False)])
    try:
        node.start()  # autostart false: nothing happens
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    finally:
        node.destroy_node()


# ----------------------------------------------------------------------------- device


def test_cpu_is_used_as_asked():
    assert resolve_device("cpu", "fail", False).device == "cpu"
    choice = resolve_device("cpu", "fail", True)
    assert not choice.half and "half precision needs CUDA" in choice.warnings[0]


@pytest.mark.parametrize("name", ["gpu", "mps", "cuda:x"])
def test_unknown_devices_are_refused(name):
    with pytest.raises(DeviceError, match="device must be 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(name, "cpu", False)


def test_unavailable_cuda_falls_back_or_fails_by_policy(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    choice = resolve_device("cuda:0", "cpu", True)
    assert (choice.device, choice.half) == ("cpu", False)
    assert "FALLING BACK TO THE CPU" in choice.warnings[0]
    with pytest.raises(DeviceError, match="unavailable: CUDA is not available"):
        resolve_device("cuda:0", "fail", False)


def test_a_missing_cuda_index_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0", "fail", True).device == "cuda:0"
    with pytest.raises(DeviceError, match="only 1 CUDA device"):
        resolve_device("cuda:3", "fail", False)


# ----------------------------------------------------------------------------- mailbox


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_mailbox_answers_waiting_pairs_in_order_until_they_expire():
    clock = FakeClock()
    box: PairMailbox[int] = PairMailbox(0.25, capacity=10, clock=clock)
    assert box.take(0.01) is None
    for item in (1, 2, 3):
        assert box.put(item) == 0
        clock.now += 0.1
    # 1 waited 0.3 s, 2 waited 0.2 s: 1 expires, 2 and 3 are answered in order.
    assert box.take(0.01) == 2 and box.dropped == 1
    assert box.take(0.01) == 3 and box.take(0.01) is None
    box.put(4)
    clock.now += 5.0
    assert box.take(0.01) == 4 and box.dropped == 1, "the newest pair never expires"
    box.put(5)
    box.clear()
    assert box.take(0.01) is None and box.dropped == 1


def test_mailbox_without_waiting_keeps_only_the_newest():
    box: PairMailbox[int] = PairMailbox(0.0, clock=FakeClock())
    assert box.put(1) == 0 and box.put(2) == 1 and box.put(3) == 1
    assert box.take(0.01) == 3 and box.dropped == 2
    box.max_wait_s = 1.0
    assert box.put(4) == 0 and box.put(5) == 0 and len(box) == 2


def test_mailbox_holds_at_most_its_capacity_however_young():
    box: PairMailbox[int] = PairMailbox(10.0, capacity=3, clock=FakeClock())
    for item in range(5):
        box.put(item)
    assert len(box) == 3 and box.dropped == 2 and box.take(0.01) == 2


@pytest.mark.parametrize("arguments", [{"max_wait_s": -0.1}, {"max_wait_s": float("nan")},
                                       {"capacity": 0}])
def test_mailbox_refuses_bad_limits(arguments):
    with pytest.raises(ValueError, match="max_wait_s|capacity"):
        PairMailbox(**arguments)


def test_mailbox_close_wakes_a_waiting_worker():
    slot: PairMailbox[int] = PairMailbox()
    result = []
    worker = threading.Thread(target=lambda: result.append(slot.take(10.0)))
    worker.start()
    slot.close()
    worker.join(timeout=2.0)
    assert not worker.is_alive() and result == [None]


# ----------------------------------------------------------------------------- session


def frames(value: int = 0, height: int = 48, width: int = 64) -> Frames:
    rgb = np.full((height, width, 3), value, np.uint8)
    header = SimpleNamespace(stamp=value, frame_id="rgb")
    return Frames(rgb, np.zeros((height, width), np.uint16), header, value, 2_000_000)


# ----------------------------------------------------------------------------- messages


def detection(x, y, w, h, *results, old_style=False):
    centre = (SimpleNamespace(x=x, y=y) if old_style
              else SimpleNamespace(position=SimpleNamespace(x=x, y=y), theta=0.0))
    hypotheses = [SimpleNamespace(hypothesis=SimpleNamespace(class_id=c, score=s))
                  for c, s in results]
    return SimpleNamespace(bbox=SimpleNamespace(center=centre, size_x=w, size_y=h),
                           results=hypotheses)


def test_best_detection_filters_by_score_and_class():
    array = SimpleNamespace(detections=[
        detection(50, 50, 20, 10, ("person", 0.6)),
        detection(100, 100, 30, 30, ("car", 0.9), ("person", 0.4)),
        detection(10, 10, 4, 4, ("person", float("nan"))),
        detection(10, 10, 0, 4, ("person", 0.99)),
    ])
    box, score = messages.best_detection(array, 0.5)
    assert box.tolist() == [85, 85, 30, 30] and score == 0.9
    box, score = messages.best_detection(array, 0.5, "person")
    assert box.tolist() == [40, 45, 20, 10] and score == 0.6
    assert messages.best_detection(array, 0.95) is None


def test_detection_at_a_click_and_older_vision_msgs():
    array = SimpleNamespace(detections=[
        detection(50, 50, 40, 40, ("person", 0.6)),
        detection(50, 50, 10, 10, ("person", 0.3), old_style=True),
    ])
    assert messages.detection_at(array, 52, 52).tolist() == [45, 45, 10, 10]
    assert messages.detection_at(array, 35, 35).tolist() == [30, 30, 40, 40]
    assert messages.detection_at(array, 0, 0) is None
    assert messages.centred_box(100, 50, (64, 32)) == (68.0, 34.0, 64.0, 32.0)


def test_tracked_object_copies_the_header_and_fields(ros):
    from std_msgs.msg import Header

    from rgbt_tracking_ros.msg import TrackedObject

    header = Header(frame_id="rgb_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    f = frames(3)
    outcome = messages.Outcome(Frames(f.rgb, f.thermal, header, 12_000_000_345, 3_500_000_001),
                               State.LOST, np.array([1.5, 2.5, 30.0, 40.0]), 0.125, 7, 2,
                               "person", 0.01)
    msg = messages.outcome_message(outcome)
    assert isinstance(msg, TrackedObject)
    assert msg.header.frame_id == "rgb_optical" and msg.header.stamp.nanosec == 345
    assert (msg.state, msg.target_id) == (TrackedObject.STATE_LOST, "person")
    assert (msg.x, msg.y, msg.width, msg.height) == (1.5, 2.5, 30.0, 40.0)
    assert (msg.confidence, msg.age, msg.frames_since_seen) == (0.125, 7, 2)
    assert (msg.pair_dt.sec, msg.pair_dt.nanosec) == (3, 500_000_001)
    stopped = messages.tracked_object(header, "person", State.STOPPED, None)
    assert stopped.state == TrackedObject.STATE_STOPPED and stopped.width == 0.0


def test_an_outcome_without_an_image_pair_is_refused_by_name(ros):
    event = messages.Outcome(None, State.STOPPED, None, 0.0, 0, 0, "person", 0.0, "stopped on request")
    for build in (messages.outcome_message, messages.detection_array,
                  lambda outcome: messages.annotated_image(outcome, "minmax", None, None)):
        if build is messages.detection_array and not messages.vision_msgs_available():
            continue
        with pytest.raises(ValueError, match="STOPPED outcome without an image pair"):
            build(event)


def test_annotated_image_is_rgb8_with_the_rgb_header(ros):
    from std_msgs.msg import Header

    f = frames(3, 60, 80)
    header = Header(frame_id="rgb_optical")
    outcome = messages.Outcome(Frames(f.rgb, f.thermal, header, 0, 0), State.TRACKING,
                               np.array([10.0, 10.0, 20.0, 20.0]), 0.9, 1, 0, "t", 0.01)
    msg = messages.annotated_image(outcome, "minmax", None, None)
    assert (msg.height, msg.width, msg.encoding, msg.step) == (60, 80, "rgb8", 240)
    assert msg.header.frame_id == "rgb_optical" and len(msg.data) == 60 * 240
    pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(60, 80, 3)
    assert tuple(pixels[30, 20]) == (0, 220, 0)  # the green box (bottom edge), in RGB order


# ----------------------------------------------------------------------------- diagnostics


def snapshot(**changes) -> diagnostics.Snapshot:
    values = dict(elapsed_s=2.0, received_rgb=30, received_thermal=28, paired=26,
                  dropped_rgb_total=4, dropped_thermal_total=2, stale_pairs_total=5,
                  malformed_rgb_total=0, malformed_thermal_total=0, malformed_in_period=0,
                  last_malformed=None, resets_total=0, last_pair_dt_s=0.002,
                  times=diagnostics.PeriodTimes([10.0, 20.0], [30.0, 50.0], 2),
                  model_errors_total=0, state="tracking", target_id="t", device="cpu",
                  model="ainet_tiny", pairing="stamp_pairer")
    values.update(changes)
    return diagnostics.Snapshot(**values)


def test_diagnostics_ok_with_every_key():
    level, message, values = diagnostics.evaluate(snapshot())
    assert (level, message) == (diagnostics.OK, "tracking")
    assert [k for k, _ in values] == list(diagnostics.KEYS)
    table = dict(values)
    assert table["rgb_rate_hz"] == "15.00" and table["pair_rate_hz"] == "13.00"
    assert table["inference_ms_mean"] == "15.00" and table["latency_ms_max"] == "50.00"
    assert table["last_pair_dt_ms"] == "2.00" and table["stale_pairs_dropped"] == "5"


@pytest.mark.parametrize("changes, level, text", [
    ({"sync_warning": "rgb and thermal do not appear to be synchronized"}, diagnostics.WARN,
     "do not appear to be synchronized"),
    ({"malformed_in_period": 2, "last_malformed": "thermal camera (/t): bad"},
     diagnostics.WARN, "2 malformed image(s) dropped: thermal camera (/t): bad"),
    ({"waiting_cameras": ["thermal camera (/t)"]}, diagnostics.STALE,
     "no images yet from thermal camera (/t)"),
    ({"silent_cameras": ["thermal camera (/t)"], "sync_warning": "x"}, diagnostics.ERROR,
     "thermal camera (/t) stopped sending images"),
    ({"times": diagnostics.PeriodTimes(model_errors=3, last_model_error="RuntimeError: x")},
     diagnostics.ERROR, "model failed on 3 pair(s): RuntimeError: x"),
])
def test_diagnostics_levels_name_the_problem(changes, level, text):
    got_level, message, _ = diagnostics.evaluate(snapshot(**changes))
    assert got_level == level and text in message


def test_worker_stats_are_per_period():
    stats = diagnostics.WorkerStats()
    stats.published(10.0, 20.0)
    stats.model_error("E: x")
    period = stats.take()
    assert (period.tracked, period.model_errors, period.inference_ms) == (1, 1, [10.0])
    assert stats.take().tracked == 0 and stats.model_errors_total == 1


def test_diagnostic_array_message(ros):
    from builtin_interfaces.msg import Time

    array = diagnostics.diagnostic_array(Time(sec=5), "rgbt_tracker: tracking", "cpu",
                                         diagnostics.WARN, "careful", [("state", "lost")])
    status = array.status[0]
    assert array.header.stamp.sec == 5 and status.level == bytes([diagnostics.WARN])
    assert (status.name, status.message, status.hardware_id) == (
        "rgbt_tracker: tracking", "careful", "cpu")
    assert [(kv.key, kv.value) for kv in status.values] == [("state", "lost")]


# ----------------------------------------------------------------------------- pairing


class FakeLogger:
    def __init__(self):
        self.lines = []

    def warning(self, text, **_):
        self.lines.append(("warning", text))

    def error(self, text, **_):
        self.lines.append(("error", text))


class FakeNode:
    """Records subscriptions; enough of rclpy.Node for the pairing front ends."""

    def __init__(self):
        self.logger = FakeLogger()
        self.subscriptions = {}

    def get_logger(self):
        return self.logger

    def resolve_topic_name(self, topic):
        return "/" + topic

    def create_subscription(self, msg_type, topic, callback, qos, callback_group=None, **_):
        self.subscriptions[topic] = (msg_type, callback, qos)
        return topic

    def destroy_subscription(self, subscription):
        del self.subscriptions[subscription]


def pairing_for(node, params):
    """The pairing front end over a runtime; returns it, why, the runtime and its outputs."""
    runtime = TrackingRuntime(object(), params)
    delivered = []
    pairing, why = create_pairing(node, params, runtime, delivered.append)
    return pairing, why, runtime, delivered


def image(array, encoding, stamp_ns):
    from rgbt_tracking_ros.codec import numpy_to_image

    msg = numpy_to_image(array, encoding)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = encoding
    return msg


def test_own_pairing_pairs_counts_malformed_and_logs_resets(ros):
    from rclpy.qos import ReliabilityPolicy

    params, _ = parse_parameters({"rgb_transport": "raw", "thermal_offset": -0.1})
    node = FakeNode()
    pairing, why, runtime, delivered = pairing_for(node, params)
    assert isinstance(pairing, OwnPairing) and "non-zero" in why
    pairing.start()
    assert set(node.subscriptions) == {"rgb/image", "thermal/image"}
    assert node.subscriptions["rgb/image"][2].reliability == ReliabilityPolicy.BEST_EFFORT
    rgb_cb, thermal_cb = (node.subscriptions[t][1] for t in ("rgb/image", "thermal/image"))
    rgb = np.zeros((6, 8, 3), np.uint8)
    thermal = np.full((3, 4), 20000, np.uint16)
    second = 1_000_000_000
    for i in range(4):  # thermal stamped 100 ms late: the offset corrects it
        rgb_cb(image(rgb, "rgb8", 10 * second + i * second // 10))
        thermal_cb(image(thermal, "mono16", 10 * second + (i + 1) * second // 10 + 1_000_000))
    pairs = runtime.history.snapshot()
    assert len(pairs) >= 3
    assert pairs[0].header.frame_id == "rgb8" and pairs[0].rgb.shape == (6, 8, 3)
    assert pairs[0].thermal.dtype == np.uint16 and pairs[0].pair_dt_ns == 1_000_000
    bad = image(rgb, "rgb8", 11 * second)
    bad.data = bad.data[:-1]
    rgb_cb(bad)
    stats = pairing.stats()
    assert stats.malformed_rgb == 1 and stats.received_rgb == 5
    assert "rgb camera (/rgb/image)" in stats.last_malformed
    rgb_cb(image(rgb, "rgb8", 2 * second))  # 8 s back: a bag loop
    assert pairing.stats().resets == 1
    warnings = [text for kind, text in node.logger.lines if kind == "warning"]
    assert any("malformed" in t for t in warnings)
    notes = [note for result in delivered for note in result.notes]
    assert any("pairing reset: rgb stamp jumped back" in t for t in notes)
    assert runtime.cameras.counters("rgb").unusable == 1
    pairing.stop()
    assert node.subscriptions == {}


def test_pairing_choice_follows_the_parameters(ros, monkeypatch):
    params, _ = parse_parameters({"use_message_filters": False})
    assert "use_message_filters is false" in pairing_for(FakeNode(), params)[1]
    params, _ = parse_parameters({})
    monkeypatch.setitem(sys.modules, "message_filters", None)  # import fails
    pairing, why, _, _ = pairing_for(FakeNode(), params)
    assert isinstance(pairing, OwnPairing) and "message_filters is not installed" in why


def test_message_filters_front_end_with_a_stand_in_module(ros, monkeypatch):
    """The wiring only (message_filters cannot be installed here): a stand-in module with
    message_filters' constructor signatures and callback registration."""
    module = types.ModuleType("message_filters")

    class Subscriber:
        def __init__(self, node, msg_type, topic, qos_profile=None, callback_group=None):
            self.callbacks = []
            self.sub = node.create_subscription(msg_type, topic, self.signal, qos_profile)

        def registerCallback(self, callback):  # noqa: N802 - message_filters' API
            self.callbacks.append(callback)

        def signal(self, msg):
            for callback in self.callbacks:
                callback(msg)

    class ApproximateTimeSynchronizer:
        def __init__(self, filters, queue_size, slop):
            self.latest = {}
            self.callbacks = []
            for index, subscriber in enumerate(filters):
                subscriber.registerCallback(lambda msg, i=index: self.add(i, msg))

        def registerCallback(self, callback):  # noqa: N802 - message_filters' API
            self.callbacks.append(callback)

        def add(self, index, msg):
            self.latest[index] = msg
            if len(self.latest) == 2:
                for callback in self.callbacks:
                    callback(self.latest[0], self.latest[1])
                self.latest = {}

    module.Subscriber = Subscriber
    module.ApproximateTimeSynchronizer = ApproximateTimeSynchronizer
    monkeypatch.setitem(sys.modules, "message_filters", module)
    params, _ = parse_parameters({})
    node = FakeNode()
    pairing, why, runtime, _ = pairing_for(node, params)
    assert isinstance(pairing, MessageFiltersPairing) and "ApproximateTimeSynchronizer" in why
    pairing.start()
    rgb_cb, thermal_cb = (node.subscriptions[t][1] for t in ("rgb/image", "thermal/image"))
    rgb_cb(image(np.zeros((6, 8, 3), np.uint8), "rgb8", 1_000_000_000))
    thermal_cb(image(np.zeros((6, 8), np.uint16), "mono16", 1_002_000_000))
    bad = image(np.zeros((6, 8), np.uint16), "mono16", 1_100_000_000)
    bad.encoding = "nonsense"
    rgb_cb(image(np.zeros((6, 8, 3), np.uint8), "rgb8", 1_100_000_000))
    thermal_cb(bad)  # malformed: counted, never raised into the synchronizer
    pairs = runtime.history.snapshot()
    assert len(pairs) == 1 and pairs[0].pair_dt_ns == 2_000_000
    stats = pairing.stats()
    assert (stats.received_rgb, stats.received_thermal, stats.paired) == (2, 2, 1)
    assert stats.malformed_thermal == 1 and "unsupported image encoding" in stats.last_malformed
    pairing.stop()
    assert node.subscriptions == {}


def test_camera_arrays_are_what_the_tracker_takes():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert rgb_array(grey).shape == (3, 4, 3)
    from rgbt_tracking_ros.codec import ImageConversionError

    with pytest.raises(ImageConversionError, match="needs 8-bit colour"):
        rgb_array(np.zeros((3, 4), np.uint16))
    assert thermal_array(np.zeros((3, 4), np.int16)).dtype == np.float32
    assert thermal_array(np.zeros((3, 4), np.uint16)).dtype == np.uint16
