"""The import graph keeps the architecture: a ROS-free core that neither the ROS layer nor the
commands leak into. Read from the source (every import, lazy ones included), so a change that
breaks the layering fails here before it reaches a robot without ROS or a machine without rclpy."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "rgbt_tracking_ros"

# What the guide calls the core: models, tracker, pairing, runtime, data, evaluation, training.
CORE = ("models", "tracker", "runtime", "data", "eval", "train", "timing", "sync.py", "defaults.py",
        "package_files.py")
# ROS 2 Python packages: only ros/, the bag and codec tools (lazily) and the launch files use them.
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "std_srvs", "sensor_msgs",
                "geometry_msgs", "diagnostic_msgs", "vision_msgs", "rosgraph_msgs", "message_filters",
                "cv_bridge", "launch", "launch_ros", "rosbag2_py", "rosidl_runtime_py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code, as absolute dotted names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module or ""
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def _files(*names: str) -> list[Path]:
    paths = [PACKAGE_DIR / name for name in names]
    return sorted(p for path in paths for p in ([path] if path.is_file() else path.rglob("*.py")))


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_core_imports_neither_ros_nor_the_ros_layer_nor_the_commands():
    offenders = []
    for path in _files(*CORE):
        for name in sorted(_imports(path)):
            top = name.split(".")[0]
            if top in ROS_PACKAGES or any(_within(name, f"rgbt_tracking_ros.{layer}") for layer in ("ros", "cli")):
                offenders.append(f"{path.relative_to(PACKAGE_DIR)} imports {name}")
    assert not offenders, offenders


def test_only_the_commands_import_the_commands():
    offenders = [f"{path.relative_to(PACKAGE_DIR)} imports {name}"
                 for path in _files(".") if path.parent.name != "cli"
                 for name in sorted(_imports(path)) if _within(name, "rgbt_tracking_ros.cli")]
    assert not offenders, offenders


def test_the_checks_see_imports():
    """The walker itself: relative, absolute and nested imports are all resolved."""
    names = _imports(PACKAGE_DIR / "ros" / "node.py")
    assert "rclpy" in names and "rgbt_tracking_ros.runtime.core" in names
    assert any(_within(name, "rgbt_tracking_ros.tracker") for name in _imports(PACKAGE_DIR / "eval" / "runner.py"))
    assert len(_files(*CORE)) > 40


def test_launch_files_and_node_command_load_no_heavy_module():
    """A launch file imports launch_support on a robot, `rgbt-track node --print-args` runs
    anywhere: neither loads rclpy, numpy or torch (checked in a fresh interpreter)."""
    import json
    import subprocess
    import sys

    script = ("import json, sys; import rgbt_tracking_ros.launch_support, rgbt_tracking_ros.cli.node; "
              "print(json.dumps(sorted({'rclpy', 'numpy', 'torch'} & set(sys.modules))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=PACKAGE_DIR.parent, timeout=120)
    assert json.loads(done.stdout) == []
