#!/usr/bin/env python3
"""Stamp pairing: optimality and added latency of StampPairer (and message_filters' where it is
installed) over simulated camera streams, no ROS needed.

Each scenario is simulated for --seeds seeds x --seconds seconds. A camera captures frame i at
phase + i / rate; its stamp is the capture time plus its clock offset plus uniform jitter; the
frame arrives at capture + transport delay (+ uniform delay jitter, arrival order kept per
camera); dropped frames never arrive. Both pairers see the same arrivals.

Optimal: the pairs a pairer with every stamp known in advance would make: all RGB-thermal
pairs within slop (after the configured offsets), taken greedily by ascending |dt|, each frame
at most once, i.e. every frame with its closest partner. "optimal %" is |emitted and optimal| /
|emitted or optimal| (100 only when the pairer emits exactly the optimal pairs); "wrong" are
emitted pairs that are not optimal, "missed" optimal pairs not emitted.

Added latency of a pair: the arrival time of the frame whose arrival emitted it minus the
arrival time of the later of its two frames (0 when emitted on its second frame's arrival).
Pairs still waiting at the end of a run (the package's pairer holds a pair until it is final)
are settled by one far-later frame per camera: they count as pairs, not in the latency.

    python bench/pairing.py [--seeds 10] [--seconds 120] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rgbt_tracking_ros.sync import PairingConfig, StampPairer  # noqa: E402

MS = 1_000_000
S = 1_000_000_000


@dataclass(frozen=True)
class CameraModel:
    rate: float  # Hz
    clock_offset_ms: float = 0.0  # added to its stamps (its clock is ahead)
    jitter_ms: float = 1.0  # stamp jitter, uniform +-
    delay_ms: float = 5.0  # transport delay: capture -> arrival
    delay_jitter_ms: float = 3.0  # uniform 0..this added to the delay
    drop: float = 0.0  # probability a frame never arrives
    early: float = 0.0  # probability a frame is stamped early_ms early (breaks the learnt spacing)
    early_ms: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    rgb: CameraModel
    thermal: CameraModel
    phase_ms: float = 5.0  # thermal capture phase drawn uniform in +-this around RGB's
    slop: float = 0.015


SCENARIOS = (
    Scenario("30/30 Hz", CameraModel(30), CameraModel(30)),
    Scenario("60/30 Hz, thermal pipeline +35 ms", CameraModel(60),
             CameraModel(30, delay_ms=40.0), phase_ms=1e3 / 60),
    Scenario("30/30 Hz, thermal clock +50 ms", CameraModel(30), CameraModel(30, clock_offset_ms=50.0)),
    Scenario("30/30 Hz, 10 % drops", CameraModel(30, drop=0.1), CameraModel(30, drop=0.1)),
    Scenario("30/30 Hz, jitter +-5 ms", CameraModel(30, jitter_ms=5.0, delay_jitter_ms=10.0),
             CameraModel(30, jitter_ms=5.0, delay_jitter_ms=10.0)),
    Scenario("30/9 Hz", CameraModel(30), CameraModel(9), phase_ms=1e3 / 30),
    # Outside the guarantee: 2 % of RGB frames stamped 12 ms early, closer to their predecessor
    # than the spacing learnt from the other frames.
    Scenario("30/30 Hz, 2 % RGB stamps 12 ms early", CameraModel(30, early=0.02, early_ms=12.0),
             CameraModel(30)),
    Scenario("30/30 Hz, 0.5 % RGB stamps 25 ms early", CameraModel(30, early=0.005, early_ms=25.0),
             CameraModel(30, jitter_ms=3.0)),
)


@dataclass(frozen=True)
class Frame:
    camera: str
    index: int
    stamp: int  # ns, as sent (clock offset included)
    arrival: int  # ns


def simulate(scenario: Scenario, seconds: float, seed: int) -> list[Frame]:
    """Both cameras' frames in arrival order (RGB first on equal arrival times)."""
    rng = random.Random(seed)
    phase = rng.uniform(-scenario.phase_ms, scenario.phase_ms) * MS
    frames = []
    for camera, model, start in (("rgb", scenario.rgb, 0.0), ("thermal", scenario.thermal, phase)):
        last_arrival = 0
        for i in range(int(seconds * model.rate)):
            capture = S + start + i * S / model.rate
            stamp = capture + (model.clock_offset_ms + rng.uniform(-model.jitter_ms, model.jitter_ms)) * MS
            if model.early and rng.random() < model.early:
                stamp -= model.early_ms * MS
            arrival = capture + (model.delay_ms + rng.uniform(0, model.delay_jitter_ms)) * MS
            if rng.random() < model.drop:
                continue
            last_arrival = max(last_arrival, round(arrival))
            frames.append(Frame(camera, i, round(stamp), last_arrival))
    frames.sort(key=lambda f: (f.arrival, f.camera != "rgb"))
    return frames


def own_config(scenario: Scenario) -> PairingConfig:
    """The package's pairer corrects the known clock offsets (parameters rgb/thermal_offset)."""
    return PairingConfig(slop=scenario.slop, rgb_offset=-scenario.rgb.clock_offset_ms / 1e3,
                         thermal_offset=-scenario.thermal.clock_offset_ms / 1e3)


def optimal_pairs(frames: list[Frame], config: PairingConfig) -> set[tuple[int, int]]:
    """(rgb index, thermal index): every frame with its closest partner within slop."""
    slop = round(config.slop * S)
    offsets = {"rgb": round(config.rgb_offset * S), "thermal": round(config.thermal_offset * S)}
    rgb = sorted((f.stamp + offsets["rgb"], f.index) for f in frames if f.camera == "rgb")
    thermal = sorted((f.stamp + offsets["thermal"], f.index) for f in frames if f.camera == "thermal")
    candidates = []
    j = 0
    for r_stamp, r_index in rgb:
        while j < len(thermal) and thermal[j][0] < r_stamp - slop:
            j += 1
        k = j
        while k < len(thermal) and thermal[k][0] <= r_stamp + slop:
            t_stamp, t_index = thermal[k]
            candidates.append((abs(t_stamp - r_stamp), r_stamp, t_stamp, r_index, t_index))
            k += 1
    used_rgb, used_thermal, pairs = set(), set(), set()
    for _, _, _, r_index, t_index in sorted(candidates):
        if r_index not in used_rgb and t_index not in used_thermal:
            used_rgb.add(r_index)
            used_thermal.add(t_index)
            pairs.add((r_index, t_index))
    return pairs


def run_own(frames: list[Frame], config: PairingConfig) -> list[tuple[int, int, int | None]]:
    """(rgb index, thermal index, added latency ns) per emitted pair; pairs still waiting at the
    end are settled by one far-later frame per camera, with latency None (not counted)."""
    pairer = StampPairer(config)
    emitted: list[tuple[int, int, int | None]] = []
    for frame in frames:
        add = pairer.add_rgb if frame.camera == "rgb" else pairer.add_thermal
        for pair in add(frame.stamp, frame):
            ready = max(pair.rgb.arrival, pair.thermal.arrival)
            emitted.append((pair.rgb.index, pair.thermal.index, frame.arrival - ready))
    end = max(f.stamp for f in frames) + 10 * S
    sentinel = Frame("end", -1, end, end)
    for pair in pairer.add_rgb(end, sentinel) + pairer.add_thermal(end, sentinel):
        if pair.rgb is not sentinel and pair.thermal is not sentinel:
            emitted.append((pair.rgb.index, pair.thermal.index, None))
    return emitted


def run_message_filters(frames: list[Frame], scenario: Scenario, queue_size: int = 10):
    """The same arrivals through message_filters.ApproximateTimeSynchronizer (no offsets: it
    cannot shift stamps), or None where message_filters does not import."""
    try:
        import message_filters
        from builtin_interfaces.msg import Time
        from std_msgs.msg import Header
    except ImportError:
        return None

    class Message:
        def __init__(self, frame: Frame) -> None:
            self.frame = frame
            self.header = Header(stamp=Time(sec=frame.stamp // S, nanosec=frame.stamp % S))

    inputs = {"rgb": message_filters.SimpleFilter(), "thermal": message_filters.SimpleFilter()}
    sync = message_filters.ApproximateTimeSynchronizer(
        [inputs["rgb"], inputs["thermal"]], queue_size, scenario.slop)
    emitted: list[tuple[int, int, int]] = []
    now = [0]

    def on_pair(rgb: Message, thermal: Message) -> None:
        ready = max(rgb.frame.arrival, thermal.frame.arrival)
        emitted.append((rgb.frame.index, thermal.frame.index, now[0] - ready))

    sync.registerCallback(on_pair)
    for frame in frames:
        now[0] = frame.arrival
        inputs[frame.camera].signalMessage(Message(frame))
    return emitted


@dataclass
class Figures:
    pairs: int
    optimal_pairs: int
    wrong: int
    missed: int
    optimal_percent: float
    latency_median_ms: float
    latency_mean_ms: float
    latency_max_ms: float


def figures(emitted: list[tuple[int, int, int]], optimal: set[tuple[int, int]]) -> tuple[int, int, int, list[int]]:
    made = {(r, t) for r, t, _ in emitted}
    return len(made), len(made - optimal), len(optimal - made), [lat for _, _, lat in emitted if lat is not None]


def summarise(runs: list[tuple[int, int, int, list[int]]], optimal_total: int) -> Figures:
    pairs = sum(r[0] for r in runs)
    wrong = sum(r[1] for r in runs)
    missed = sum(r[2] for r in runs)
    latencies = [lat / MS for r in runs for lat in r[3]] or [0.0]
    union = optimal_total + wrong
    return Figures(pairs, optimal_total, wrong, missed,
                   100.0 * (optimal_total - missed) / union if union else 100.0,
                   statistics.median(latencies), statistics.fmean(latencies), max(latencies))


def run_scenario(scenario: Scenario, seeds: int, seconds: float) -> dict[str, Figures | None]:
    own_runs, mf_runs, optimal_total, mf_available = [], [], 0, True
    for seed in range(seeds):
        frames = simulate(scenario, seconds, seed)
        config = own_config(scenario)
        optimal = optimal_pairs(frames, config)
        optimal_total += len(optimal)
        own_runs.append(figures(run_own(frames, config), optimal))
        if mf_available:
            mf = run_message_filters(frames, scenario)
            if mf is None:
                mf_available = False
            else:
                mf_runs.append(figures(mf, optimal))
    return {"stamp_pairer": summarise(own_runs, optimal_total),
            "message_filters": summarise(mf_runs, optimal_total) if mf_available else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    header = (f"{'scenario':40} {'pairer':16} {'pairs':>7} {'optimal %':>9} {'wrong':>6} "
              f"{'missed':>6}  added latency ms: {'median':>6} {'mean':>6} {'max':>6}")
    print(f"{args.seeds} seeds x {args.seconds:g} s per scenario, slop 15 ms, queue_size 10")
    print(header)
    report = {}
    for scenario in SCENARIOS:
        result = run_scenario(scenario, args.seeds, args.seconds)
        report[scenario.name] = {k: None if v is None else asdict(v) for k, v in result.items()}
        for name, fig in result.items():
            if fig is None:
                print(f"{scenario.name:40} {name:16} not installed")
                continue
            print(f"{scenario.name:40} {name:16} {fig.pairs:7d} {fig.optimal_percent:9.2f} {fig.wrong:6d} "
                  f"{fig.missed:6d}  {'':18}{fig.latency_median_ms:6.2f} {fig.latency_mean_ms:6.2f} "
                  f"{fig.latency_max_ms:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
