"""Precision and success plots drawn the way benchmark papers draw them.

All trackers on one figure, the legend sorted best first with the score in front of each name
(`[0.892] AINet`), precision against the location error threshold (0-50 px, 0-25 px for
GTOT) and success against the overlap threshold (0-1).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .metrics import OVERLAP_THRESHOLDS, Scores

_STYLES = ("-", "--", "-.", ":")


def _draw(
    path: Path, curves: list[tuple[str, float, np.ndarray]], x: np.ndarray, title: str, xlabel: str, ylabel: str, loc: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    colours = plt.get_cmap("tab10").colors
    for index, (name, value, curve) in enumerate(sorted(curves, key=lambda item: -item[1])):
        axes.plot(
            x, curve, color=colours[index % len(colours)], linestyle=_STYLES[index // len(colours) % len(_STYLES)],
            linewidth=2, label=f"[{value:.3f}] {name}",
        )
    axes.set_xlim(x.min(), x.max())
    axes.set_ylim(0, 1)
    axes.set_xlabel(xlabel, fontsize=13)
    axes.set_ylabel(ylabel, fontsize=13)
    axes.set_title(title)
    axes.grid(True, linestyle=":", linewidth=0.6)
    axes.legend(loc=loc, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def plot_scores(results: Mapping[str, Scores], out_dir: str | os.PathLike, dataset: str) -> list[Path]:
    """Write `<dataset>_precision.png` and `<dataset>_success.png`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(results.values()))
    at = {"gtot": 5}.get(dataset, 20)
    precision, success = out / f"{dataset}_precision.png", out / f"{dataset}_success.png"
    _draw(
        precision, [(name, s.pr, s.precision_curve) for name, s in results.items()], first.precision_thresholds,
        f"Precision plots ({dataset}, score at {at} px)", "Location error threshold (pixels)", "Precision", "lower right",
    )
    _draw(
        success, [(name, s.sr, s.success_curve) for name, s in results.items()], OVERLAP_THRESHOLDS,
        f"Success plots ({dataset}, AUC)", "Overlap threshold", "Success rate", "lower left",
    )
    return [precision, success]
