"""Node parameter values from text, and back to the text rcl reads.

Launch arguments and ``-p name:=value`` arrive as strings; what a string means depends on the
parameter's kind in the one schema (runtime/parameters.py ``SPECS``, plus the ``use_sim_time``
every ROS 2 node has): ``target_id:=1`` is the string "1", ``slop:=0`` the double 0.0. Ranges,
choices and lengths are left to the node, which reports every bad value at configure.

:func:`format_parameter_value` writes a typed value so that rcl's YAML parser reads it back
with the same type. Imports no ROS module.
"""
from __future__ import annotations

import difflib
import math
import re
import shlex
from collections.abc import Callable, Iterable
from typing import TypeAlias

from .runtime.parameters import SPECS_BY_NAME, ParamSpec

ParameterValue: TypeAlias = str | bool | int | float | list[float]

# Every ROS 2 node has it; the launch files and `rgbt-track node` set it for bag replay.
_USE_SIM_TIME = ParamSpec("use_sim_time", "bool", False, "Use /clock instead of the system clock")
_SETTABLE: dict[str, ParamSpec] = {**SPECS_BY_NAME, _USE_SIM_TIME.name: _USE_SIM_TIME}

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse_bool(text: object, what: str) -> bool:
    """'true'/'false' (also 1/0, yes/no, on/off, any case) as a bool."""
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{what}: expected true or false, got {text!r}")


def parse_float(text: object, what: str, *, minimum: float | None = None,
                exclusive: bool = False) -> float:
    """A finite float, optionally >= minimum (> minimum with exclusive)."""
    if isinstance(text, bool):
        raise ValueError(f"{what}: expected a number, got {text!r}")
    try:
        value = float(text) if isinstance(text, (int, float)) else float(str(text).strip())
    except ValueError:
        raise ValueError(f"{what}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {text!r}")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        relation = ">" if exclusive else ">="
        raise ValueError(f"{what}: must be {relation} {minimum:g}, got {text!r}")
    return value


def parse_float_list(text: object, what: str,
                     lengths: Iterable[int] | None = None) -> list[float]:
    """'[1, 2, 3, 4]', '1,2,3,4' or '1 2 3 4' (or a list) as floats; '' or '[]' as []."""
    items: list[object]
    if isinstance(text, str):
        body = text.strip()
        if body.startswith("[") != body.endswith("]"):
            raise ValueError(f"{what}: unbalanced brackets in {text!r}")
        body = body.strip("[]").strip()
        items = [item for item in re.split(r"[,\s]+", body) if item] if body else []
    elif isinstance(text, (list, tuple)):
        items = list(text)
    else:
        raise ValueError(f"{what}: expected a list of numbers, got {text!r}")
    values = []
    for item in items:
        problem = f"{what}: {item!r} is not a number (in {text!r})"
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise ValueError(problem)
        try:
            value = float(item)
        except ValueError:
            raise ValueError(problem) from None
        if not math.isfinite(value):
            raise ValueError(f"{what}: {item!r} is not a finite number (in {text!r})")
        values.append(value)
    allowed = tuple(lengths or ())
    if allowed and len(values) not in allowed:
        counts = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{what}: expected {counts} numbers, got {len(values)} in {text!r}")
    return values


def parse_box(text: str, what: str = "initial_box") -> list[float]:
    """'[x, y, w, h]' in RGB pixels with w, h > 0; '' means no box ([])."""
    box = parse_float_list(text, what, lengths=(0, 4))
    if box and not (box[2] > 0 and box[3] > 0):
        raise ValueError(f"{what}: [x, y, w, h] needs a positive width and height, got {text!r}")
    return box


def _parse_string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected a string, got {value!r}")
    return value


def _parse_int(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what}: expected an integer, got {value!r}")


# One text parser per kind of the schema (ParamSpec.kind).
_FROM_TEXT: dict[str, Callable[[object, str], ParameterValue]] = {
    "string": _parse_string,
    "bool": parse_bool,
    "int": _parse_int,
    "double": parse_float,
    "double[]": parse_float_list,
}


def _parameter_spec(name: str) -> ParamSpec:
    """The schema entry of a parameter the node takes, or ValueError with the closest name."""
    spec = _SETTABLE.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(_SETTABLE), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown node parameter {name!r}{hint}; the node's parameters are: "
                         + ", ".join(SPECS_BY_NAME))
    return spec


def parse_parameter_value(name: str, value: object) -> ParameterValue:
    """A parameter value from a string (or an already typed value) as its declared kind.

    Strings stay strings (``target_id:=1`` means the string "1"); numbers for doubles become
    floats, so ``slop:=0`` or ``initial_box:=[10,20,30,40]`` give doubles, not integers.
    """
    return _FROM_TEXT[_parameter_spec(name).kind](value, f"parameter {name}")


_PLAIN_STRING = re.compile(r"[A-Za-z_/~][A-Za-z0-9_./:~+\-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def format_parameter_value(value: object) -> str:
    """A typed value as rcl's YAML reads it back with the same type, for ``-p name:=value``.

    Floats keep a '.' or an exponent (``1.0``, ``1e-05``: rcl reads both as doubles), arrays
    are written as doubles, and strings that YAML would read as something else ('1', 'true',
    '', 'a: b') are single-quoted. An empty array cannot be passed (rcl reads ``[]`` as "not
    set"): leave the parameter out to get its default.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be passed as a parameter")
        return repr(value)
    if isinstance(value, str):
        if _PLAIN_STRING.fullmatch(value) and value.lower() not in _YAML_WORDS:
            return value
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("an empty array cannot be passed as a parameter override (rcl "
                             "reads [] as 'not set'): leave the parameter out for its default")
        return "[" + ", ".join(format_parameter_value(float(v)) for v in value) + "]"
    raise ValueError(f"cannot pass {value!r} ({type(value).__name__}) as a parameter")


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    """'name:=value' (a parameter or a remapping, as ROS writes both) as (name, value)."""
    name, sep, value = text.partition(":=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"{what}: expected NAME:=VALUE, got {text!r}")
    return name, value


def split_items(items: str | Iterable[str]) -> list[str]:
    """A list of items, or one string of space-separated (shell-quoted) items, as a list."""
    if isinstance(items, str):
        try:
            return shlex.split(items)
        except ValueError as error:
            raise ValueError(f"cannot split {items!r}: {error}") from None
    return list(items)


def parse_parameter_assignments(items: str | Iterable[str]) -> list[tuple[str, ParameterValue]]:
    """'name:=value' items (a list, or one space-separated string) as typed (name, value)s."""
    pairs = []
    for item in split_items(items):
        name, text = parse_assignment(item, "parameter")
        pairs.append((name, parse_parameter_value(name, text)))
    return pairs
