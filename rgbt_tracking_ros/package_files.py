"""Where the package's data files (config/, launch/, model configs) are, in a source checkout
or an install (colcon, pip). Used by the model registry, the launch support and the ROS layer;
imports nothing heavy, so launch files and `rgbt-track --help` stay fast."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "rgbt_tracking_ros"
# The repository root when this module runs from a source checkout (editable install).
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def _is_source_root(path: Path) -> bool:
    manifest = path / "package.xml"
    try:
        return f"<name>{PACKAGE}</name>" in manifest.read_text(encoding="utf-8")
    except OSError:
        return False


def share_dirs() -> list[Path]:
    """Where the package's data files (config/, launch/) are looked up, first match wins.

    The same order as the model registry's ``config_dirs()``: the source checkout this module
    runs from (edits take effect without rebuilding), the share dir the ament index names
    (colcon installs; ``ament_index_python`` when importable), then
    ``<prefix>/share/rgbt_tracking_ros`` for ``sys.prefix`` (pip) and every
    ``AMENT_PREFIX_PATH`` entry (an index without the package marker file).
    """
    candidates: list[Path] = []
    if _is_source_root(SOURCE_ROOT):
        candidates.append(SOURCE_ROOT)
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        pass
    else:
        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)))
        except (LookupError, ValueError, OSError):  # PackageNotFoundError is a KeyError
            pass
    prefixes = [sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)]
    candidates.extend(Path(prefix) / "share" / PACKAGE for prefix in prefixes if prefix)
    found: list[Path] = []
    for directory in candidates:
        if directory.is_dir() and directory not in found:
            found.append(directory)
    return found


def find_package_file(*parts: str) -> Path:
    """The first ``<share dir>/<parts>`` that exists, or FileNotFoundError naming where it looked."""
    relative = Path(*parts)
    dirs = share_dirs()
    for directory in dirs:
        path = directory / relative
        if path.is_file():
            return path
    searched = ", ".join(str(d) for d in dirs) or "no share dir of the package was found"
    raise FileNotFoundError(
        f"{relative} not found (searched: {searched}); build and source the workspace "
        f"(colcon build, then . install/setup.bash) or run from a checkout of {PACKAGE}"
    )
