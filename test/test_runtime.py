"""The ROS-free tracking runtime: states and their reasons, target requests, camera silence,
stream continuity, live parameters and health, without DDS."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from rgbt_tracking_ros.runtime import health
from rgbt_tracking_ros.runtime.core import ImageFrame, TrackingRuntime
from rgbt_tracking_ros.runtime.inputs import CameraWatch, Continuity
from rgbt_tracking_ros.runtime.parameters import (
    CONFIGURE,
    LIVE,
    SPECS,
    SPECS_BY_NAME,
    NodeParameters,
    parse_parameters,
)
from rgbt_tracking_ros.runtime.session import (
    Frames,
    Mode,
    State,
    TargetRequest,
    TrackingSession,
)
from rgbt_tracking_ros.runtime.targets import check_box, find_frames
from rgbt_tracking_ros.tracker import TrackResult, TrackState

S = 1_000_000_000


class FakeTracker:
    """Moves the box 1 px right per frame; confidence from a list (LOST below 0.25)."""

    def __init__(self, confidences=(0.9,)):
        self.confidences = list(confidences)
        self.box = None
        self.age = 0
        self.initialized_on = []
        self.on_track = None
        self.on_initialize = None
        self.calls = 0
        self.config = SimpleNamespace(lost_threshold=0.25)

    def set_lost_threshold(self, value):
        self.config.lost_threshold = value

    def initialize(self, rgb, thermal, box):
        if self.on_initialize is not None:
            self.on_initialize()
        self.initialized_on.append(int(rgb[0, 0, 0]))
        self.box, self.age = np.array(box, float), 0

    def track(self, rgb, thermal):
        self.calls += 1
        if self.on_track is not None:
            self.on_track()
        confidence = self.confidences.pop(0) if len(self.confidences) > 1 else self.confidences[0]
        self.box = self.box + [1, 0, 0, 0]
        self.age += 1
        lost = confidence < self.config.lost_threshold
        return TrackResult(self.box.copy(), confidence,
                           TrackState.LOST if lost else TrackState.TRACKING, int(lost),
                           "confidence below lost_threshold" if lost else "")


def frames(value: int = 0, height: int = 48, width: int = 64, stamp: int | None = None) -> Frames:
    rgb = np.full((height, width, 3), value, np.uint8)
    stamp = value if stamp is None else stamp
    header = SimpleNamespace(stamp=stamp, frame_id="rgb")
    return Frames(rgb, np.zeros((height, width), np.uint16), header, stamp, 2_000_000)


def request(box=(10.0, 10.0, 8.0, 8.0), target_id="person", source="test", on=None):
    return TargetRequest(tuple(box), target_id, source, on if on is not None else frames(0))


# ----------------------------------------------------------------------------- session


def test_session_initialises_then_tracks_and_reports_the_trackers_lost_with_its_reason():
    tracker = FakeTracker([0.9, 0.1])
    session = TrackingSession(tracker, "default")
    waiting = session.step(frames(1)).outcomes[0]
    assert waiting.state is State.STOPPED and "waiting" in waiting.reason
    r = request(on=frames(2))
    session.request(r)
    new = session.step(None).outcomes
    assert [o.state for o in new] == [State.NEW] and new[0].target_id == "person"
    assert r.done.is_set() and r.success and "stamped 0.000000002" in r.message
    tracked = session.step(frames(3)).outcomes[0]
    assert (tracked.state, tracked.age, tracked.box[0], tracked.reason) == (
        State.TRACKING, 1, 11.0, "")
    lost = session.step(frames(4)).outcomes[0]
    assert (lost.state, lost.frames_since_seen) == (State.LOST, 1)
    assert lost.reason == "confidence below lost_threshold"
    assert session.accepts_detection()


def test_reset_keeps_publishing_stopped_and_stop_goes_quiet():
    session = TrackingSession(FakeTracker(), "t")
    session.request(request(on=frames(1)))
    session.step(frames(1))
    session.reset()
    assert [o.state for o in session.step(frames(2)).outcomes] == [State.STOPPED]
    session.stop()
    assert session.step(frames(3)).outcomes == []
    assert not session.accepts_detection() and session.status().state is State.STOPPED


def test_a_request_on_a_held_frame_initialises_there_and_tracks_the_current_one():
    tracker = FakeTracker()
    session = TrackingSession(tracker, "t")
    session.request(request(on=frames(5)))
    outcomes = session.step(frames(7)).outcomes
    assert tracker.initialized_on == [5]
    assert [(o.state, o.frames.rgb_stamp_ns) for o in outcomes] == [
        (State.NEW, 5), (State.TRACKING, 7)]


def test_a_result_computed_across_a_reset_is_discarded():
    tracker = FakeTracker()
    session = TrackingSession(tracker, "t")
    session.request(request(on=frames(1)))
    session.step(None)
    tracker.on_track = session.stop  # stop arrives while the model runs
    assert session.step(frames(2)).outcomes == []
    assert session.status().mode is Mode.STOPPED


def test_model_errors_are_published_as_error_with_the_reason_and_the_target_is_kept():
    tracker = FakeTracker()
    session = TrackingSession(tracker, "t")
    session.request(request(on=frames(1), target_id="t"))
    session.step(None)
    session.step(frames(2))

    def boom():
        raise RuntimeError("CUDA error: an illegal memory access")

    tracker.on_track = boom
    result = session.step(frames(3))
    assert isinstance(result.model_error, RuntimeError)
    error = result.outcomes[0]
    assert error.state is State.ERROR and "CUDA error" in error.reason
    assert error.box is not None and error.target_id == "t"
    tracker.on_track = None
    assert session.step(frames(4)).outcomes[0].state is State.TRACKING


def test_a_failed_initialisation_answers_failure_and_names_the_active_target():
    tracker = FakeTracker()
    session = TrackingSession(tracker, "t")
    session.request(request(on=frames(1), target_id="first"))
    session.step(None)

    def boom():
        raise ValueError("template crop failed")

    tracker.on_initialize = boom
    second = request(on=frames(2), target_id="second")
    session.request(second)
    result = session.step(frames(3))
    assert not second.success and "template crop failed" in second.message
    assert "'first' stays active" in second.message
    assert [o.state for o in result.outcomes] == [State.TRACKING]
    assert result.outcomes[0].target_id == "first"


def test_an_interruption_marks_the_target_lost_and_the_model_is_not_run_again():
    tracker = FakeTracker()
    session = TrackingSession(tracker, "t")
    session.request(request(on=frames(1)))
    session.step(frames(2))
    calls = tracker.calls
    event = session.interrupt("thermal camera sent no image for 5.0 s")
    assert event.state is State.LOST and "thermal camera" in event.reason
    after = [session.step(frames(3 + i)).outcomes[0] for i in range(3)]
    assert all(o.state is State.LOST and "set a new target" in o.reason for o in after)
    assert [o.frames_since_seen for o in after] == [1, 2, 3] and tracker.calls == calls
    assert session.accepts_detection()
    session.request(request(on=frames(9)))
    assert [o.state for o in session.step(frames(10)).outcomes] == [State.NEW, State.TRACKING]
    # Without a target there is nothing to lose.
    session.reset()
    assert session.interrupt("gap") is None and session.status().mode is Mode.WAITING


# ----------------------------------------------------------------------------- targets


def test_find_frames_refuses_stamps_too_old_or_in_the_future():
    held = [frames(stamp=(10 + i) * S // 10) for i in range(5)]  # 1.0 .. 1.4 s
    found, _ = find_frames(held, 12 * S // 10, 0.015)
    assert found is held[2]
    found, why = find_frames(held, held[0].rgb_stamp_ns - 33 * S, 0.015)
    assert found is None and "too old" in why
    found, why = find_frames(held, held[-1].rgb_stamp_ns + 100 * S, 0.015)
    assert found is None and "in the future" in why
    found, why = find_frames(held, 125 * S // 100, 0.015)
    assert found is None and "no held image pair" in why


@pytest.mark.parametrize("box, text", [
    ((10, 10, 2, 30), "too small"), ((0, 0, 100, 30), "larger than the 64x48 image"),
    ((100, 10, 10, 10), "does not overlap"), ((np.nan, 1, 10, 10), "NaN"),
    ((1, 1, 0, 10), "positive width"),
])
def test_boxes_that_cannot_be_tracked_are_refused(box, text):
    values, why = check_box(box, 48, 64, 4.0)
    assert values is None and text in why


# ----------------------------------------------------------------------------- inputs


def test_a_camera_sending_only_unusable_frames_counts_as_silent():
    watch = CameraWatch({"rgb": "rgb camera", "thermal": "thermal camera"}, 0.0)
    watch.arrived("rgb", 0.1, True)
    watch.arrived("thermal", 0.1, True)
    for t in (0.5, 1.0, 1.5, 2.0):
        watch.arrived("rgb", t, True)
        watch.arrived("thermal", t, False, "bad encoding")
    change = watch.check(2.0, 1.0)
    assert change.silent == ["thermal"] and "only unusable images" in change.reasons["thermal"]
    watch.arrived("thermal", 2.1, True)
    assert watch.check(2.2, 1.0).back == ["thermal"]


def test_continuity_names_jumps_back_and_gaps():
    c = Continuity(gap_s=1.0, jump_back_s=0.5)
    assert c.check(10 * S) is None and c.check(10 * S + S // 10) is None
    assert "went back 7.000 s" in c.check(3 * S + S // 10)
    assert "no image pair for 5.0 s" in c.check(8 * S + S // 10)


def _image(stamp_ns, value=0):
    return ImageFrame(SimpleNamespace(frame_id="rgb"), np.full((48, 64, 3), value, np.uint8),
                      stamp_ns)


def _thermal(stamp_ns):
    return ImageFrame(SimpleNamespace(frame_id="thermal"), np.zeros((48, 64), np.uint16),
                      stamp_ns)


def feed(runtime, start_s, count, step_s=0.1):
    results = []
    for i in range(count):
        t = round((start_s + i * step_s) * S)
        results.append(runtime.image("rgb", _image(t, i)))
        results.append(runtime.image("thermal", _thermal(t + 2_000_000)))
    return results


def runtime_with_target(**params):
    values, _ = parse_parameters(params)
    tracker = FakeTracker()
    clock = [0.0]
    runtime = TrackingRuntime(tracker, values, clock=lambda: clock[0])
    feed(runtime, 10.0, 3)
    req = runtime.request_target((10, 10, 8, 8), "person", "set_target")
    assert isinstance(req, TargetRequest)
    runtime.step(runtime.mailbox.take(0.0))
    return runtime, tracker, clock


def test_stamps_going_back_mark_the_target_lost_with_the_reason():
    runtime, tracker, _ = runtime_with_target()
    results = feed(runtime, 3.0, 3)  # a bag loop: 7 s back
    events = [e for r in results for e in r.events]
    assert len(events) == 1 and events[0].state is State.LOST
    assert "jumped back" in events[0].reason
    later = runtime.step(runtime.mailbox.take(0.0)).outcomes[0]
    assert later.state is State.LOST and "jumped back" in later.reason


def test_a_gap_in_the_pair_stamps_marks_the_target_lost():
    runtime, _, _ = runtime_with_target(camera_timeout=1.0)
    results = feed(runtime, 15.0, 3)  # 5 s without pairs
    events = [e for r in results for e in r.events]
    assert events and "no image pair for" in events[0].reason


def test_request_target_names_its_frame_and_refuses_old_and_future_stamps():
    runtime, tracker, _ = runtime_with_target()
    held = runtime.history.snapshot()
    ok = runtime.request_target((10, 10, 8, 8), "a", "set_target", held[0].rgb_stamp_ns)
    assert isinstance(ok, TargetRequest) and ok.frames is held[0]
    assert "too old" in runtime.request_target((10, 10, 8, 8), "a", "set_target",
                                               held[0].rgb_stamp_ns - 33 * S)
    assert "in the future" in runtime.request_target((10, 10, 8, 8), "a", "set_target",
                                                     held[-1].rgb_stamp_ns + 100 * S)
    assert "too small" in runtime.request_target((10, 10, 1, 1), "a", "set_target")


def test_silent_camera_check_publishes_lost_once_and_names_the_camera():
    runtime, _, clock = runtime_with_target(camera_timeout=0.5)
    runtime.set_labels({"rgb": "rgb camera (/rgb)", "thermal": "thermal camera (/thermal)"})
    clock[0] = 2.0
    result, silent, _ = runtime.check_cameras()
    assert set(silent) == {"rgb", "thermal"}
    assert len(result.events) == 1 and result.events[0].state is State.LOST
    assert "sent no image" in result.events[0].reason
    assert runtime.state_text().startswith("lost (")


def test_live_parameters_take_effect_at_once():
    runtime, tracker, _ = runtime_with_target()
    params, _ = parse_parameters({"lost_threshold": 0.95, "slop": 0.02})
    notes = runtime.update(params)
    assert tracker.config.lost_threshold == 0.95
    assert any("lost_threshold" in n for n in notes) and runtime.pairing.config.slop == 0.02
    feed(runtime, 10.3, 2)
    outcome = runtime.step(runtime.mailbox.take(0.0)).outcomes[0]
    assert outcome.state is State.LOST and "lost_threshold" in outcome.reason


def test_the_worker_answers_a_request_without_a_new_pair():
    runtime, tracker, _ = runtime_with_target()
    stop = threading.Event()
    published = []
    worker = threading.Thread(target=runtime.work, args=(stop, published.append), daemon=True)
    worker.start()
    req = runtime.request_target((12, 12, 8, 8), "b", "set_target")
    assert req.wait(5.0)[0]
    stop.set()
    runtime.mailbox.close()
    worker.join(5.0)
    assert any(o.state is State.NEW for r in published for o in r.outcomes)


# ----------------------------------------------------------------------------- health


def _snapshot(**changes):
    values = dict(elapsed_s=1.0, received_rgb=30, received_thermal=30, paired=30,
                  dropped_rgb_total=0, dropped_thermal_total=0, stale_pairs_total=0,
                  malformed_rgb_total=0, malformed_thermal_total=0, malformed_in_period=0,
                  last_malformed=None, resets_total=0, last_pair_dt_s=0.002,
                  times=health.PeriodTimes([10.0], [30.0], 1, taken=30),
                  model_errors_total=0, state="tracking", target_id="t", device="cpu",
                  model="m", pairing="stamp_pairer")
    values.update(changes)
    return health.Snapshot(**values)


def test_health_warns_when_the_tracker_answers_too_few_pairs():
    level, message, values = health.evaluate(_snapshot(
        times=health.PeriodTimes([2200.0], [2300.0], 1, taken=1), stale_in_period=29,
        latency_budget_s=5.0))
    assert level == health.WARN and "answered 1 of 30 image pairs" in message
    assert "2200 ms" in message and dict(values)["offered_pairs"] == "30"


def test_health_warns_over_the_latency_budget():
    level, message, _ = health.evaluate(_snapshot(latency_budget_s=0.01))
    assert level == health.WARN and "exceeds latency_budget 10 ms" in message
    assert health.evaluate(_snapshot())[0] == health.OK


def test_health_names_stamps_off_the_node_clock_instead_of_a_latency():
    years_ms = 3 * 365.25 * 86400e3
    level, message, values = health.evaluate(_snapshot(times=health.PeriodTimes([10.0], [years_ms], 1, taken=30)))
    assert level == health.WARN and "3.0 years behind the node's clock on 1 of 1" in message
    assert "use_sim_time" in message and "exceeds latency_budget" not in message
    assert dict(values)["latency_ms_mean"] == "" and dict(values)["latency_ms_max"] == ""
    # Mixed: only the on-clock samples are latencies; a camera clock 5 s ahead is off it too.
    level, message, values = health.evaluate(_snapshot(
        times=health.PeriodTimes([10.0, 10.0, 10.0], [30.0, 50.0, -5000.0], 3, taken=30)))
    assert "5.0 s ahead of the node's clock on 1 of 3" in message
    assert dict(values)["latency_ms_mean"] == "40.00" and dict(values)["latency_ms_max"] == "50.00"


# ----------------------------------------------------------------------------- schema


def test_the_schema_matches_the_dataclass_and_says_when_each_value_applies():
    assert [spec.name for spec in SPECS] == list(NodeParameters.__dataclass_fields__)
    assert {spec.when for spec in SPECS} == {"live", "activate", "configure"}
    for name in ("lost_threshold", "slop", "rgb_offset", "thermal_offset", "latency_budget",
                 "min_answered_ratio", "camera_timeout"):
        assert SPECS_BY_NAME[name].when == LIVE, name
    for name in ("model", "checkpoint", "device"):
        assert SPECS_BY_NAME[name].when == CONFIGURE, name
    assert all(spec.description for spec in SPECS)


# ----------------------------------------------------------------------------- generated docs


def test_docs_node_md_is_generated_from_the_schema_and_up_to_date():
    from rgbt_tracking_ros.runtime import docs

    committed = docs.DOC_PATH.read_text()
    assert committed == docs.render(), (
        "docs/node.md is stale: run python -m rgbt_tracking_ros.runtime.docs --write")
    for spec in SPECS:
        assert f"`{spec.name}`" in committed


def test_rgbt_track_node_options_come_from_the_schema():
    import argparse

    from rgbt_tracking_ros.cli import node as node_cli

    parser = argparse.ArgumentParser()
    node_cli.add_node_parser(parser.add_subparsers())
    args = parser.parse_args(["node", "--device", "cpu", "--lost-threshold", "0.3",
                              "--initial-box", "[1.0,2.0,30.0,40.0]", "-p", "slop:=0.01"])
    argv = node_cli.settings_from_args(args).ros_arguments()
    assert "device:=cpu" in argv and "lost_threshold:=0.3" in argv and "slop:=0.01" in argv
    options = {a.dest for a in parser._subparsers._group_actions[0].choices["node"]._actions}
    missing = [s.name for s in SPECS if f"param_{s.name}" not in options
               and s.name not in node_cli._OWN_OPTIONS]
    assert missing == []


@pytest.mark.parametrize("platform", ["drone", "ground_robot"])
def test_platform_files_pass_the_schema(platform):
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[1] / "config" / f"{platform}.yaml"
    values = yaml.safe_load(path.read_text())["/**"]["ros__parameters"]
    assert set(values) <= set(SPECS_BY_NAME), set(values) - set(SPECS_BY_NAME)
    params, _ = parse_parameters(values)  # raises listing every problem
    assert params.device_fallback in ("cpu", "fail")


def _detection(x, y, w, h, score, class_id="person"):
    return SimpleNamespace(
        bbox=SimpleNamespace(center=SimpleNamespace(position=SimpleNamespace(x=x, y=y)),
                             size_x=w, size_y=h),
        results=[SimpleNamespace(hypothesis=SimpleNamespace(class_id=class_id, score=score))])


def test_clicks_and_detections_choose_their_box_in_the_runtime():
    runtime, _, _ = runtime_with_target(click_box_size=[20.0, 10.0], detection_min_score=0.5)
    plain = runtime.click(30.0, 20.0)
    assert plain.box == (20.0, 15.0, 20.0, 10.0) and plain.source == "click"
    array = SimpleNamespace(detections=[_detection(30, 20, 16, 16, 0.9)])
    on_detection = runtime.click(30.0, 20.0, 0, array)
    assert on_detection.box == (22.0, 12.0, 16.0, 16.0)
    runtime.step(None)
    assert runtime.detections(array, 0) is None  # tracking: detections are not used
    runtime.session.interrupt("gap")
    request = runtime.detections(array, 0)
    assert request.source.startswith("detection (score 0.90)")
    assert runtime.detections(SimpleNamespace(detections=[_detection(30, 20, 16, 16, 0.1)]),
                              0) is None


def _waiting_stamps(runtime):
    stamps = []
    while (taken := runtime.mailbox.take(0.0)) is not None:
        stamps.append(taken.rgb_stamp_ns)
    return stamps


def test_pairs_waiting_behind_a_slow_step_are_answered_in_order_within_max_pair_wait():
    runtime, _, clock = runtime_with_target(max_pair_wait=0.25)
    _waiting_stamps(runtime)
    for i in range(6):  # the worker busy for 0.3 s: the first pairs wait too long
        feed(runtime, 10.3 + 0.1 * i, 1)
        clock[0] += 0.06
    stamps = _waiting_stamps(runtime)
    assert stamps == sorted(stamps) and 3 <= len(stamps) <= 5, stamps
    assert runtime.mailbox.dropped >= 1

    notes = runtime.update(parse_parameters({"max_pair_wait": 0.0})[0])
    assert any("max_pair_wait" in note for note in notes)
    for i in range(4):
        feed(runtime, 11.0 + 0.1 * i, 1)
    assert len(_waiting_stamps(runtime)) == 1, "max_pair_wait 0 keeps only the newest pair"
