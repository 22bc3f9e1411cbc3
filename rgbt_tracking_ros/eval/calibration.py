"""Where a model's LOST and re-detection thresholds come from: the confidence of search crops
centred on the ground truth (on-target) against crops of the same scale displaced by one crop
plus a target width (off-target), on real sequences. A threshold is good where few on-target
crops fall below it and few off-target ones reach it. `lost_threshold` is read against the
confidence `track` reports; `redetect_threshold` against the raw peak the full-frame search
compares, whose per-crop false positives multiply over its up to 48 crops.

    python -m rgbt_tracking_ros.eval.calibration ../shared/data --model compact_rgbt
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from rgbt_tracking_ros.data.datasets import Sequence, read_dataset
from rgbt_tracking_ros.eval.boxes import valid_box
from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig
from rgbt_tracking_ros.tracker.target_model import TargetModelConfig

THRESHOLDS = (0.05, 0.08, 0.10, 0.12, 0.15, 0.18, 0.25)
REDETECT_THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.56, 0.6)


@dataclass
class CropPeaks:
    """Per crop: the confidence `track` would report and the full-frame search's raw peak."""

    on: list[float] = field(default_factory=list)
    off: list[float] = field(default_factory=list)
    raw_on: list[float] = field(default_factory=list)
    raw_off: list[float] = field(default_factory=list)

    def add(self, tracker: RGBTTracker, rgb: np.ndarray, thermal: np.ndarray, box: np.ndarray, on: bool) -> None:
        confidence, raw = tracker.peaks_at(rgb, thermal, box)
        (self.on if on else self.off).append(confidence)
        (self.raw_on if on else self.raw_off).append(raw)

    def extend(self, other: CropPeaks) -> None:
        self.on += other.on
        self.off += other.off
        self.raw_on += other.raw_on
        self.raw_off += other.raw_off


def crop_peaks(tracker: RGBTTracker, sequence: Sequence, step: int) -> CropPeaks:
    """On- and off-target peaks on every `step`-th frame after the first, with the tracker
    initialised on the first frame's ground truth."""
    truth = sequence.truth["visible"]
    tracker.initialize(sequence.rgb(0), sequence.thermal(0), truth[0])
    peaks = CropPeaks()
    search_factor = tracker.config.search_factor
    assert search_factor is not None, "RGBTTracker sets the search factor from the model's geometry"
    for index in range(step, len(sequence), step):
        box = np.asarray(truth[index], dtype=np.float64)
        if not valid_box(box):
            continue  # target absent
        rgb, thermal = sequence.rgb(index), sequence.thermal(index)
        peaks.add(tracker, rgb, thermal, box, on=True)
        shift = search_factor * float(np.sqrt(box[2] * box[3])) + box[2]
        for dx in (shift, -shift):
            if 0 <= box[0] + dx and box[0] + dx + box[2] <= rgb.shape[1]:
                peaks.add(tracker, rgb, thermal, box + np.array([dx, 0.0, 0.0, 0.0]), on=False)
                break
    return peaks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a folder of OTB-layout sequence folders")
    parser.add_argument("--model", default="compact_rgbt")
    parser.add_argument("--step", type=int, default=10, help="every n-th frame (default 10)")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    # The target model's filter stays the first frame's: off-target crops must not teach it.
    config = TrackerConfig(target_model_config=TargetModelConfig(update_interval=10**9))
    total = CropPeaks()
    for sequence in tqdm(read_dataset("otb", args.data), desc="sequences"):
        peaks = crop_peaks(RGBTTracker(model, config), sequence, args.step)
        total.extend(peaks)
        on, off = peaks.on, peaks.off
        tqdm.write(f"{sequence.name}: on-target median {np.median(on):.3f} p10 {np.percentile(on, 10):.3f}"
                   + (f", off-target median {np.median(off):.3f} p90 {np.percentile(off, 90):.3f}" if off else "")
                   + f" ({len(on)} on, {len(off)} off)")
    _table("lost_threshold: the confidence track reports", total.on, total.off, THRESHOLDS)
    _table("redetect_threshold: the full-frame search's raw peak", total.raw_on, total.raw_off,
           REDETECT_THRESHOLDS)
    print(f"raw off-target maximum {max(total.raw_off):.3f}, raw on-target median {np.median(total.raw_on):.3f}")


def _table(title: str, on: list[float], off: list[float], thresholds: tuple[float, ...]) -> None:
    on_array, off_array = np.array(on), np.array(off)
    print(f"\n{title}\n")
    print(f"| threshold | on-target crops below ({len(on_array)}) | off-target crops at or above ({len(off_array)}) |")
    print("|---|---|---|")
    for threshold in thresholds:
        print(f"| {threshold:g} | {100 * np.mean(on_array < threshold):.0f}% | {100 * np.mean(off_array >= threshold):.0f}% |")


if __name__ == "__main__":
    main()
