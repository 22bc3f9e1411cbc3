"""One rule for tests that need ROS: skip when rclpy or our interfaces do not import, fail
instead when RGBT_REQUIRE_ROS=1 (as `make test` and `colcon test` set), so CI cannot pass by
skipping them."""
from __future__ import annotations

import importlib
import os

import pytest

BASE_MODULES = ("rclpy", "rgbt_tracking_ros.msg", "rgbt_tracking_ros.srv")


def ros_import_error(*modules: str) -> str | None:
    """Why the modules do not import, or None when they all do."""
    for name in BASE_MODULES + modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a type support library that does not load
            return f"{name}: {type(exc).__name__}: {exc}"
    return None


def require_ros(*modules: str, module_level: bool = False) -> None:
    """Skip (or fail under RGBT_REQUIRE_ROS=1) unless rclpy, our interfaces and `modules` import."""
    error = ros_import_error(*modules)
    if error is None:
        return
    if os.environ.get("RGBT_REQUIRE_ROS") == "1":
        pytest.fail(f"RGBT_REQUIRE_ROS=1 but ROS does not import: {error}", pytrace=False)
    pytest.skip(
        f"ROS is not importable ({error}); run `make ros` and `. install/ros_env.sh`, "
        "or source a colcon install space",
        allow_module_level=module_level,
    )
