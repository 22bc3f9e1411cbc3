#!/usr/bin/env python3
"""Point the PyPI ROS wheels' rosidl_generator_py CMake exports at this interpreter.

The wheels are built in a manylinux container, so every
`share/<pkg>/cmake/export_<pkg>__rosidl_generator_pyExport.cmake` carries that builder's
include dirs (`/opt/python/cp311-cp311/include/python3.11` and
`.../site-packages/numpy/_core/include`). A package that generates Python bindings for
messages which depend on those packages (std_msgs, builtin_interfaces, ...) inherits these
include dirs and fails to compile. This rewrites, in place and idempotently, every include
dir that looks like a Python or numpy include dir to this interpreter's include dir and
`numpy.get_include()`; anything else is kept. Run it with the venv's python.

Usage: python scripts/fix_rosidl_py_exports.py [PREFIX ...]   (default: sys.prefix)
"""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

PROPERTY = re.compile(r'(INTERFACE_INCLUDE_DIRECTORIES\s+")([^"]*)(")')
PYTHON_INCLUDE = re.compile(r"/include/python\d+\.\d+[a-z]*/?$")
NUMPY_INCLUDE = re.compile(r"/numpy/(_core|core)/include/?$")


def targets() -> tuple[str, str]:
    import numpy

    py_include = sysconfig.get_paths()["include"]
    if not (Path(py_include) / "Python.h").is_file():
        sys.exit(
            f"error: {py_include}/Python.h is missing: install this Python's development "
            "headers (Debian: python3-dev) before building ROS interfaces"
        )
    return py_include, numpy.get_include()


def rewrite(text: str, py_include: str, np_include: str) -> str:
    def fix_entry(entry: str) -> str:
        if PYTHON_INCLUDE.search(entry):
            return py_include
        if NUMPY_INCLUDE.search(entry):
            return np_include
        return entry

    def fix(match: re.Match) -> str:
        entries = [fix_entry(e) for e in match.group(2).split(";")]
        return match.group(1) + ";".join(entries) + match.group(3)

    return PROPERTY.sub(fix, text)


def main(argv: list[str]) -> int:
    prefixes = [Path(p) for p in argv] or [Path(sys.prefix)]
    py_include, np_include = targets()
    seen = changed = 0
    for prefix in prefixes:
        for path in sorted(prefix.glob("share/*/cmake/*rosidl_generator_py*Export.cmake")):
            seen += 1
            text = path.read_text()
            new = rewrite(text, py_include, np_include)
            if new != text:
                path.write_text(new)
                changed += 1
    print(f"rosidl_generator_py exports: {seen} found, {changed} rewritten "
          f"(python include {py_include}, numpy include {np_include})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
