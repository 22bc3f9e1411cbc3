"""Stamp pairing of RGB and thermal frames: exact pairings on synthetic streams, no ROS.

Frames "arrive" at their true capture time (merged in that order); their stamps carry the
jitter and clock offsets. Messages are (camera, index) tuples, so a pair names its partners.
"""
from __future__ import annotations

import random
import re
import threading

import pytest

from rgbt_tracking_ros.sync import Pair, PairingConfig, StampPairer, stamp_ns

MS = 1_000_000
S = 1_000_000_000
PERIOD_30HZ = S / 30
PERIOD_9HZ = S / 9


def stream(camera, period, count, *, start=0, jitter=0, shift=0, seed=0, skip=None):
    """(arrival_ns, stamp_ns, msg) for frame i at true time start + i*period."""
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        true = start + round(i * period)
        stamp = true + shift + (rng.randint(-jitter, jitter) if jitter else 0)
        if skip is None or not skip(true):
            frames.append((true, stamp, (camera, i)))
    return frames


def merge(rgb, thermal):
    """Events (camera, stamp, msg) in arrival order; RGB first on equal arrival times."""
    events = [(a, 0, "rgb", s, m) for a, s, m in rgb]
    events += [(a, 1, "thermal", s, m) for a, s, m in thermal]
    events.sort(key=lambda event: event[:2])
    return [(camera, stamp, msg) for _, _, camera, stamp, msg in events]


def feed(pairer, events):
    pairs = []
    for camera, stamp, msg in events:
        add = pairer.add_rgb if camera == "rgb" else pairer.add_thermal
        pairs += add(stamp, msg)
    return pairs


def drain(pairer, after):
    """Far-later sentinels settle every waiting frame; the RGB one is dropped, the thermal one
    stays queued."""
    pairs = pairer.add_rgb(after + 10 * S, "rgb-end")
    return pairs + pairer.add_thermal(after + 11 * S, "thermal-end")


def partners(pairs):
    return [(pair.rgb, pair.thermal) for pair in pairs]


def assert_accounting(stats):
    assert stats.received_rgb == stats.paired + stats.dropped_rgb + stats.queued_rgb
    assert stats.received_thermal == stats.paired + stats.dropped_thermal + stats.queued_thermal


def test_equal_rates_with_jitter_pair_every_frame_with_its_true_partner():
    n = 90
    rgb = stream("rgb", PERIOD_30HZ, n, jitter=2 * MS, seed=1)
    thermal = stream("thermal", PERIOD_30HZ, n, jitter=2 * MS, seed=2)
    pairer = StampPairer()
    pairs = feed(pairer, merge(rgb, thermal))
    # Every pair, the last one included, is emitted on its second frame's arrival: the next RGB
    # frame (at least the learnt minimum spacing later) cannot be closer. (The pairer used to
    # hold the last pair until the next RGB frame: that wait was the added latency.)
    assert partners(pairs) == [(("rgb", i), ("thermal", i)) for i in range(n)]
    pairs += drain(pairer, rgb[-1][1])
    assert partners(pairs) == [(("rgb", i), ("thermal", i)) for i in range(n)]
    assert [p.rgb_stamp_ns for p in pairs] == [s for _, s, _ in rgb]
    assert all(p.dt <= 0.004 for p in pairs)
    stats = pairer.stats
    assert (stats.paired, stats.dropped_rgb, stats.dropped_thermal) == (n, 1, 0)  # 1: the sentinel
    assert stats.last_dt == pairs[-1].dt
    assert_accounting(stats)
    assert pairer.health_warning() is None


def test_9hz_thermal_pairs_with_the_nearest_rgb_frame_and_the_rest_is_dropped():
    slop = 15 * MS
    rgb = stream("rgb", PERIOD_30HZ, 90, jitter=1 * MS, seed=3)
    # Phase 5 ms: thermal frames fall 5, 16.1 and -6.1 ms from the RGB grid in turn.
    thermal = stream("thermal", PERIOD_9HZ, 27, start=5 * MS, jitter=1 * MS, seed=4)
    expected = []
    for _, t_stamp, t_msg in thermal:
        _, r_stamp, r_msg = min(rgb, key=lambda frame: abs(frame[1] - t_stamp))
        if abs(r_stamp - t_stamp) <= slop:
            expected.append((r_msg, t_msg))
    assert 10 < len(expected) < len(thermal)  # both outcomes occur
    pairer = StampPairer(PairingConfig(slop=0.015))
    pairs = feed(pairer, merge(rgb, thermal)) + drain(pairer, rgb[-1][1])
    assert partners(pairs) == expected
    stats = pairer.stats
    assert stats.paired == len(expected)
    assert stats.dropped_rgb == len(rgb) - len(expected) + 1
    assert stats.dropped_thermal == len(thermal) - len(expected)
    assert_accounting(stats)
    assert pairer.health_warning() is None  # judged against the slower camera


def test_closest_candidate_wins_even_when_the_farther_one_arrives_first():
    pairer = StampPairer()
    assert pairer.add_rgb(1000 * MS, "r") == []
    assert pairer.add_thermal(988 * MS, "t-far") == []  # 12 ms, inside slop: r may still improve
    assert pairer.add_thermal(1004 * MS, "t-near") == []  # 4 ms
    pairs = pairer.add_rgb(1033 * MS, "r-next")
    assert partners(pairs) == [("r", "t-near")]
    assert pairs[0].dt_ns == 4 * MS
    assert pairer.stats.dropped_thermal == 1  # t-far: its only candidate is taken


def test_closest_candidate_wins_when_the_nearer_one_arrives_out_of_order():
    pairer = StampPairer()
    pairer.add_rgb(1000 * MS, "r")
    assert pairer.add_thermal(1012 * MS, "t-far") == []
    # Older than the thermal camera's newest: inserted in order, and closer to r.
    assert partners(pairer.add_thermal(997 * MS, "t-near")) == [("r", "t-near")]
    pairer.add_rgb(1033 * MS, "r-next")  # 21 ms from t-far: beyond slop
    stats = pairer.stats
    assert (stats.paired, stats.dropped_thermal, stats.resets) == (1, 1, 0)


def test_a_late_partner_within_slop_is_waited_for():
    pairer = StampPairer()
    pairer.add_rgb(967 * MS, "r0")
    assert partners(pairer.add_thermal(967 * MS, "t0")) == [("r0", "t0")]
    assert pairer.add_rgb(1000 * MS, "r1") == []
    assert pairer.add_rgb(1033 * MS, "r2") == []
    assert pairer.stats.dropped_rgb == 0  # r1 waits for the thermal camera
    pairs = pairer.add_thermal(1010 * MS, "t1")
    assert partners(pairs) == [("r1", "t1")]
    assert pairs[0].dt == pytest.approx(0.010)
    assert pairer.stats.queued_rgb == 1  # r2: 23 ms from t1


def test_a_partner_beyond_slop_is_not_used():
    pairer = StampPairer()
    pairer.add_rgb(2000 * MS, "r")
    assert pairer.add_thermal(2020 * MS, "t") == []
    assert pairer.add_rgb(2040 * MS, "r-next") == []
    stats = pairer.stats
    assert (stats.paired, stats.dropped_rgb, stats.dropped_thermal) == (0, 1, 1)


@pytest.mark.parametrize(("gap", "paired"), [(15 * MS, 1), (15 * MS + 1, 0)])
def test_slop_is_inclusive_to_the_nanosecond(gap, paired):
    pairer = StampPairer(PairingConfig(slop=0.015))
    pairer.add_rgb(3 * S, "r")
    pairer.add_thermal(3 * S + gap, "t")
    pairer.add_rgb(3 * S + 40 * MS, "r-next")
    assert pairer.stats.paired == paired


@pytest.mark.parametrize("late", [0.15, 20.0])
def test_constant_thermal_clock_offset_pairs_only_once_corrected(late):
    n = 90
    rgb = stream("rgb", PERIOD_30HZ, n, jitter=MS // 2, seed=5)
    thermal = stream("thermal", PERIOD_30HZ, n, jitter=MS // 2, shift=round(late * S), seed=6)
    events = merge(rgb, thermal)

    plain = StampPairer()
    feed(plain, events)
    assert plain.stats.paired == 0
    assert_accounting(plain.stats)
    warning = plain.health_warning(thermal_name="/thermal/image_raw")
    assert warning is not None and "different clocks" in warning and "thermal_offset" in warning
    assert "/thermal/image_raw later" in warning
    about = float(re.search(r"differ by about ([0-9.]+) s", warning).group(1))
    assert about == pytest.approx(late, abs=PERIOD_30HZ / S)

    corrected = StampPairer(PairingConfig(thermal_offset=-late))
    pairs = feed(corrected, events) + drain(corrected, rgb[-1][1])
    assert partners(pairs) == [(("rgb", i), ("thermal", i)) for i in range(n)]
    assert pairs[0].thermal_stamp_ns == thermal[0][1] - round(late * S)
    assert corrected.health_warning() is None


def test_thermal_gap_drops_the_rgb_frames_of_the_gap_and_pairing_resumes():
    n = 150  # 5 s; thermal silent from 1 s to 3 s
    in_gap = lambda true: S <= true < 3 * S  # noqa: E731
    rgb = stream("rgb", PERIOD_30HZ, n, jitter=MS, seed=7)
    thermal = stream("thermal", PERIOD_30HZ, n, jitter=MS, seed=8, skip=in_gap)
    pairer = StampPairer()
    pairs = feed(pairer, merge(rgb, thermal)) + drain(pairer, rgb[-1][1])
    kept = [i for i in range(n) if not in_gap(round(i * PERIOD_30HZ))]
    assert len(kept) == n - 60
    assert partners(pairs) == [(("rgb", i), ("thermal", i)) for i in kept]
    stats = pairer.stats
    assert (stats.paired, stats.dropped_rgb, stats.dropped_thermal) == (len(kept), 60 + 1, 0)
    assert_accounting(stats)


def test_bag_loop_resets_both_queues_and_pairing_continues():
    n = 60
    rgb = stream("rgb", PERIOD_30HZ, n, jitter=MS, seed=9)
    first = merge(rgb, stream("thermal", PERIOD_30HZ, n, jitter=MS, seed=10))
    second = [(camera, stamp, (msg, "again")) for camera, stamp, msg in first]
    pairer = StampPairer()
    pairs = feed(pairer, first[:-1])
    # The last RGB frame waits for its thermal partner, which never comes before the loop.
    assert pairer.stats.queued_rgb == 1 and pairer.stats.queued_thermal == 0

    pairs += feed(pairer, second[:1])  # RGB jumps back 2 s
    stats = pairer.stats
    assert stats.resets == 1 and "rgb stamp jumped back" in stats.last_reset_reason
    assert (stats.queued_rgb, stats.queued_thermal) == (1, 0)
    assert (stats.dropped_rgb, stats.dropped_thermal) == (1, 0)  # the waiting frame was cleared

    pairs += feed(pairer, second[1:]) + drain(pairer, rgb[-1][1])
    expected = [(("rgb", i), ("thermal", i)) for i in range(n - 1)]
    expected += [((("rgb", i), "again"), (("thermal", i), "again")) for i in range(n)]
    assert partners(pairs) == expected
    assert pairer.stats.resets == 1  # the thermal camera's jump lands on a cleared timeline
    assert_accounting(pairer.stats)


def test_thermal_jump_back_also_resets():
    pairer = StampPairer()
    pairer.add_rgb(10 * S, "r-old")
    pairer.add_thermal(10 * S, "t-old")
    assert pairer.stats.paired == 1
    assert pairer.add_thermal(0, "t-new") == []
    assert pairer.stats.resets == 1 and pairer.stats.last_reset_reason.startswith("thermal")
    assert partners(pairer.add_rgb(0, "r-new")) == [("r-new", "t-new")]


def test_small_jump_back_within_tolerance_does_not_reset():
    pairer = StampPairer(PairingConfig(jump_back_tolerance=0.5))
    pairer.add_rgb(1000 * MS, "r0")
    pairer.add_rgb(600 * MS, "r-late")  # 0.4 s back
    assert pairer.stats.resets == 0 and pairer.stats.queued_rgb == 2
    pairer.add_rgb(400 * MS, "r-loop")  # 0.6 s back
    assert pairer.stats.resets == 1 and pairer.stats.queued_rgb == 1


@pytest.mark.parametrize("camera", ["rgb", "thermal"])
def test_queue_overflow_drops_the_oldest_and_counts_it(camera):
    other = "thermal" if camera == "rgb" else "rgb"
    pairer = StampPairer(PairingConfig(queue_size=3))
    add = {"rgb": pairer.add_rgb, "thermal": pairer.add_thermal}
    for i in range(5):
        assert add[camera](round(i * PERIOD_30HZ), i) == []
    stats = pairer.stats
    assert (getattr(stats, f"dropped_{camera}"), getattr(stats, f"queued_{camera}")) == (2, 3)
    pairs = add[other](round(2 * PERIOD_30HZ) + 2 * MS, "x")  # frame 2 is the oldest left
    assert [getattr(pair, camera) for pair in pairs] == [2]
    add[other](MS, "late")  # frame 0's partner: frame 0 is gone
    stats = pairer.stats
    assert (stats.paired, getattr(stats, f"dropped_{other}")) == (1, 1)
    assert_accounting(stats)


def test_a_frame_pushed_out_with_a_mutual_match_is_paired_not_dropped():
    pairer = StampPairer(PairingConfig(queue_size=2))
    pairer.add_thermal(1000 * MS, "t")
    assert pairer.add_rgb(1004 * MS, "r") == []  # a thermal frame up to 1008 ms could be closer
    assert pairer.add_rgb(1037 * MS, "r1") == []
    # The thermal camera stays silent; r leaves the full queue with its best match.
    assert partners(pairer.add_rgb(1070 * MS, "r2")) == [("r", "t")]
    pairer.add_rgb(1103 * MS, "r3")  # r1 has no match: dropped
    stats = pairer.stats
    assert (stats.paired, stats.dropped_rgb, stats.queued_rgb) == (1, 1, 2)


def test_no_thermal_warns_about_the_thermal_topic_and_qos():
    pairer = StampPairer()
    for i in range(9):
        pairer.add_rgb(round(i * PERIOD_30HZ), i)
    assert pairer.health_warning(thermal_name="/thermal/image_raw") is None  # too early
    for i in range(9, 30):
        pairer.add_rgb(round(i * PERIOD_30HZ), i)
    warning = pairer.health_warning(rgb_name="/rgb/image_raw", thermal_name="/thermal/image_raw")
    assert "no /thermal/image_raw images" in warning
    assert "topic name and QoS" in warning and "best-effort" in warning
    assert "30 /rgb/image_raw and 0 /thermal/image_raw messages, 0 pairs" in warning
    assert pairer.health_warning() is None  # a new period has started


def test_unpaired_stamps_close_together_suggest_raising_slop():
    # 16 ms apart: beyond slop but nowhere near a clock offset.
    rgb = stream("rgb", PERIOD_30HZ, 60)
    thermal = stream("thermal", PERIOD_30HZ, 60, shift=16 * MS)
    pairer = StampPairer()
    feed(pairer, merge(rgb, thermal))
    warning = pairer.health_warning()
    assert pairer.stats.paired == 0
    assert "raise slop (now 0.015 s) or queue_size (now 10)" in warning


def test_reset_counts_waiting_frames_as_dropped():
    pairer = StampPairer()
    pairer.add_rgb(S, "r")
    pairer.add_thermal(2 * S, "t")
    pairer.reset()
    stats = pairer.stats
    assert (stats.resets, stats.dropped_rgb, stats.dropped_thermal) == (1, 1, 1)
    assert (stats.queued_rgb, stats.queued_thermal) == (0, 0)
    assert stats.last_reset_reason == "reset() called"
    assert pairer.add_rgb(0, "r-again") == []  # newest stamps forgotten: no jump-back reset
    assert pairer.stats.resets == 1


def test_messages_are_opaque():
    class Hostile:
        def __eq__(self, other):
            raise AssertionError("the pairer compared messages")

        __hash__ = None

    rgb, thermal = Hostile(), Hostile()
    pairer = StampPairer()
    pairer.add_rgb(S, rgb)
    pairs = pairer.add_thermal(S, thermal)
    assert len(pairs) == 1 and pairs[0].rgb is rgb and pairs[0].thermal is thermal


def test_stamps_must_be_int_nanoseconds():
    assert stamp_ns(12, 345) == 12 * S + 345
    with pytest.raises(TypeError, match="int nanoseconds"):
        StampPairer().add_rgb(1.5, "r")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"slop": -0.001}, "slop"),
        ({"slop": float("nan")}, "slop"),
        ({"queue_size": 0}, "queue_size"),
        ({"queue_size": 2.0}, "queue_size"),
        ({"rgb_offset": float("inf")}, "rgb_offset"),
        ({"thermal_offset": float("nan")}, "thermal_offset"),
        ({"jump_back_tolerance": 0}, "jump_back_tolerance"),
    ],
)
def test_invalid_config_is_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PairingConfig(**kwargs)


def test_two_threads_keep_the_counters_consistent():
    n = 300
    pairer = StampPairer()
    start = threading.Barrier(2)
    results: dict[str, list[Pair]] = {"rgb": [], "thermal": []}
    errors: list[BaseException] = []

    def run(camera, add, shift):
        try:
            start.wait()
            for i in range(n):
                results[camera] += add(round(i * PERIOD_30HZ) + shift, (camera, i))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=("rgb", pairer.add_rgb, 0)),
               threading.Thread(target=run, args=("thermal", pairer.add_thermal, 2 * MS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    pairs = results["rgb"] + results["thermal"]
    stats = pairer.stats
    assert (stats.received_rgb, stats.received_thermal, stats.paired) == (n, n, len(pairs))
    assert_accounting(stats)
    # Whatever the interleaving, only true partners lie within slop, and none is used twice.
    assert all(pair.rgb[1] == pair.thermal[1] for pair in pairs)
    assert len({pair.rgb for pair in pairs}) == len(pairs)


def test_equal_rates_pairs_leave_on_their_second_frame_without_waiting():
    """Added latency: once each camera's spacing is learnt (8 frames), every pair is returned by
    the add() of its later frame, and the pairing is the closest-partner one."""
    n = 300
    rgb = stream("rgb", PERIOD_30HZ, n, jitter=MS, seed=11)
    thermal = stream("thermal", PERIOD_30HZ, n, start=3 * MS, jitter=MS, seed=12)
    pairer = StampPairer()
    late = []
    for camera, stamp, msg in merge(rgb, thermal):
        add = pairer.add_rgb if camera == "rgb" else pairer.add_thermal
        for pair in add(stamp, msg):
            if msg not in (pair.rgb, pair.thermal):  # emitted by a later frame: it waited
                late.append(pair.rgb[1])
    assert pairer.stats.paired == n
    assert all(index < 10 for index in late)  # only while the spacing is unknown


def test_a_camera_faster_than_its_learnt_spacing_is_still_paired_closest_when_it_waits():
    """9 Hz thermal beside 30 Hz RGB: the thermal frame pairs as soon as the next RGB frame
    (>= its learnt 33 ms later) cannot be closer, i.e. on the RGB frame nearest to it."""
    rgb = stream("rgb", PERIOD_30HZ, 90, jitter=MS, seed=13)
    thermal = stream("thermal", PERIOD_9HZ, 27, start=5 * MS, jitter=MS, seed=14)
    pairer = StampPairer()
    pairs = feed(pairer, merge(rgb, thermal))
    expected = []
    for _, t_stamp, t_msg in thermal:
        _, r_stamp, r_msg = min(rgb, key=lambda frame: abs(frame[1] - t_stamp))
        if abs(r_stamp - t_stamp) <= 15 * MS:
            expected.append((r_msg, t_msg))
    assert partners(pairs) == expected


def test_set_offsets_moves_waiting_frames_and_later_stamps():
    pairer = StampPairer()
    assert pairer.add_thermal(1040 * MS, "t") == []  # thermal stamped 40 ms late, waiting
    pairer.set_offsets(thermal_offset=-0.040)
    assert pairer.config.thermal_offset == -0.040 and pairer.config.rgb_offset == 0.0
    pairs = pairer.add_rgb(1000 * MS, "r")  # t now sits at 1000 ms, beside r
    assert partners(pairs) == [("r", "t")] and pairs[0].dt_ns == 0
    pairs = pairer.add_thermal(1074 * MS, "t-next") + pairer.add_rgb(1033 * MS, "r-next")
    # t-next (1034 ms after its offset) waits: spacing unknown, a later RGB frame could be closer.
    pairs += pairer.add_rgb(1066 * MS, "r3")
    assert partners(pairs) == [("r-next", "t-next")] and pairs[0].dt_ns == MS
    assert pairer.stats.resets == 0
