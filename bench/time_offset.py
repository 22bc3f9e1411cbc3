#!/usr/bin/env python3
"""Camera stamp offset from the images: estimate error on recordings with known offsets.

Recordings (rgbt_tracking_ros/timing/recordings.py): frames rendered at each camera's true
capture times and stamped with the true time plus the offset, RGB at 30 Hz with +-1 ms stamp
jitter; thermal at 30 Hz (13 ms out of phase with RGB) or 9 Hz, +-1 ms jitter.

* scene: PanningScene seeds (scikit-image photographs, irregular pan, a warm object, a thermal
  image of its own with a slightly different field of view), 160x120;
* real: sequences of /work/shared/data played at 30 fps (blended between frames at in-between
  times; the "thermal" camera is inverted grey at half resolution), skipped where absent.

Prints, per source and thermal rate, the estimate error (estimate - true offset) over the
offsets 0, 20, 40 and 100 ms: mean, max |error|, the share within 5 ms, and whether every
estimate was flagged reliable; then the time one estimate takes.

    python bench/time_offset.py [--seeds 6] [--seconds 8] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rgbt_tracking_ros.timing.offset import OffsetConfig, OffsetEstimator  # noqa: E402
from rgbt_tracking_ros.timing.recordings import (  # noqa: E402
    CameraTiming,
    InterpolatedVideo,
    PanningScene,
    sample_recording,
)

OFFSETS_MS = (0, 20, 40, 100)
REAL = ("uav123_person11", "otb_Human3", "uav123_10fps_wakeboard10")
MS = 1_000_000


def errors(render, seconds: float, thermal_rate: float, phase: float, seed: int):
    """(errors ms per offset, all reliable, seconds per estimate)."""
    rgb = sample_recording(render, seconds, CameraTiming(30, jitter=0.001), CameraTiming(1e-3, phase=seconds),
                           seed=seed)
    thermal = sample_recording(render, seconds, CameraTiming(1e-3, phase=seconds),
                               CameraTiming(thermal_rate, phase=phase, jitter=0.001), seed=seed + 1)
    rgb = [f for f in rgb if f.camera == "rgb"]
    thermal = [f for f in thermal if f.camera == "thermal"]
    found, reliable, took = [], True, []
    for offset in OFFSETS_MS:
        estimator = OffsetEstimator(OffsetConfig(window=seconds))
        events = [(f.stamp, "rgb", f.image) for f in rgb] + [(f.stamp + offset * MS, "thermal", f.image)
                                                               for f in thermal]
        for stamp, camera, image in sorted(events, key=lambda e: e[0]):
            (estimator.add_rgb if camera == "rgb" else estimator.add_thermal)(stamp, image)
        start = time.perf_counter()
        estimate = estimator.estimate()
        took.append(time.perf_counter() - start)
        found.append(estimate.offset_ms - offset)
        reliable &= estimate.reliable
    return found, reliable, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--data", default="/work/shared/data")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    sources = [(f"scene seed {seed}", PanningScene(seed, size=(160, 120)).render, seed) for seed in range(args.seeds)]
    for name in REAL:
        folder = Path(args.data) / name / "img"
        if folder.is_dir():
            video = InterpolatedVideo.from_folder(folder, fps=30, limit=round(30 * args.seconds) + 1, size=(320, 240))
            sources.append((f"real {name}", video.render, 0))
        else:
            print(f"real {name}: {folder} absent, skipped")
    report, timings = {}, {30: [], 9: []}
    print(f"{'source':34} {'thermal':>7} {'errors ms at 0/20/40/100 ms':>30} {'max |err|':>9} {'reliable':>8}")
    for label, render, seed in sources:
        for rate in (30, 9):
            found, reliable, took = errors(render, args.seconds, rate, 0.013, seed)
            timings[rate] += took
            report[f"{label} @ {rate} Hz"] = {"errors_ms": found, "reliable": reliable}
            text = " ".join(f"{e:+6.2f}" for e in found)
            print(f"{label:34} {rate:5d}Hz {text:>30} {max(map(abs, found)):9.2f} {str(reliable):>8}")
    every = [e for r in report.values() for e in r["errors_ms"]]
    within = sum(abs(e) <= 5 for e in every)
    print(f"all: {within}/{len(every)} within 5 ms, max |error| {max(map(abs, every)):.2f} ms, "
          f"mean error {statistics.fmean(every):+.2f} ms")
    for rate, took in timings.items():
        print(f"one estimate over {args.seconds:g} s, thermal {rate} Hz: median {1e3 * statistics.median(took):.0f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
