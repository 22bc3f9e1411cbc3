"""The run's table on stdout and its JSON record."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .plan import PUBLISHED_FPS

COLUMNS = ("kind", "name", "device", "precision", "execution", "backend", "median_ms", "p99_ms", "fps", "peak_mb")


def add_published_ratio(row: dict[str, Any]) -> dict[str, Any]:
    """FPS over the published (GPU) FPS for the two published trackers' GPU rows."""
    if row["name"] in PUBLISHED_FPS and "fps" in row and row["device"].startswith("cuda"):
        fps, source = PUBLISHED_FPS[row["name"]]
        row["published_fps"], row["published_source"] = fps, source
        row["vs_published"] = row["fps"] / fps
    return row


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def _notes(row: dict[str, Any]) -> str:
    notes = []
    if "vs_published" in row:
        notes.append(f"{row['vs_published']:.2f}x published")
    if "max_abs_error" in row:
        notes.append(f"err {row['max_abs_error']:.1e} (|y| {row['max_abs_reference']:.2g})")
    if "mean_iou" in row:
        notes.append(f"IoU vs fp32 mean {row['mean_iou']:.4f} min {row['min_iou']:.3f} ({row['frames']} frames)")
    if "state" in row:
        notes.append(f"{row['state']} (reached: {row['reached']})")
    if "call" in row:
        notes.append(f"{row['call']} on {row['grid']} search features")
    if "error" in row:
        notes.append(f"failed: {row['error']}")
    return "; ".join(notes)


def table(rows: list[dict[str, Any]]) -> str:
    header = [*COLUMNS, "notes"]
    cells = [header] + [[_cell(row.get(column)) for column in COLUMNS] + [_notes(row)] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in cells)


def write_json(path: Path, environment: dict[str, object], settings: dict[str, object],
               rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"environment": environment, "settings": settings, "results": rows}
    path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
