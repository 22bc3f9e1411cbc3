"""The node's /diagnostics message. What it says is decided ROS-free in
rgbt_tracking_ros/runtime/health.py (re-exported here); diagnostic_updater is not installable
here, so the DiagnosticArray is built directly (diagnostic_msgs is)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rgbt_tracking_ros.runtime.health import (
    ERROR,
    KEYS,
    OK,
    STALE,
    WARN,
    PeriodTimes,
    Snapshot,
    WorkerStats,
    evaluate,
)

# What the diagnostics say is re-exported from the runtime.
__all__ = ["ERROR", "KEYS", "OK", "STALE", "WARN", "PeriodTimes", "Snapshot", "WorkerStats", "diagnostic_array",
           "evaluate"]


def diagnostic_array(stamp: Any, name: str, hardware_id: str, level: int, message: str,
                     values: Sequence[tuple[str, str]]) -> Any:
    """A DiagnosticArray holding one status."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=bytes([level]), name=name, message=message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values])
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status.append(status)
    return array
