"""The node's parameters in rclpy: declarations with descriptors, reading, and the check of
``ros2 param set`` calls. The schema itself (names, types, ranges, defaults, when a change takes
effect, the checks) is ROS-free: rgbt_tracking_ros/runtime/parameters.py, re-exported here.

Double and double-array parameters are declared with dynamic typing (integers are what people
type) and checked by :func:`check_value` instead of rclpy's static types.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rgbt_tracking_ros.runtime.parameters import (
    ACTIVATE,
    CLICK_TYPE_CHOICES,
    CONFIGURE,
    FALLBACK_CHOICES,
    IMAGE_QOS_CHOICES,
    LIVE,
    SPECS,
    SPECS_BY_NAME,
    THERMAL_MODE_CHOICES,
    TRANSPORT_CHOICES,
    NodeParameters,
    ParameterError,
    ParamSpec,
    check_value,
    parse_parameters,
)

# The ROS-free schema is re-exported: the node and its tests take everything from here.
__all__ = [
    "ACTIVATE", "CLICK_TYPE_CHOICES", "CONFIGURE", "FALLBACK_CHOICES", "IMAGE_QOS_CHOICES", "LIVE", "SPECS",
    "SPECS_BY_NAME", "THERMAL_MODE_CHOICES", "TRANSPORT_CHOICES", "Gate", "NodeParameters", "ParameterError",
    "ParamSpec", "check_value", "declare_parameters", "parse_parameters", "read_parameters",
]

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.parameter import Parameter

# Decides whether a checked change may be made now: (spec, value) -> refusal reason or None.
Gate = Callable[[list[tuple[ParamSpec, Any]]], "str | None"]


def declare_parameters(node: Node, gate: Gate | None = None) -> dict[str, str]:
    """Declare every parameter on an rclpy node, with descriptions and ranges.

    A value from the command line or a YAML file that fails its check does not raise (that
    would kill the process before configure could report it): the parameter keeps its default
    and the error is returned by name, for configure to report and fail on. Registers a
    callback that checks later ``ros2 param set`` calls the same way; setting a valid value
    clears that parameter's error. ``gate`` (the node's) then refuses changes the current
    lifecycle state does not allow, or that fail the combined checks, and applies live ones.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    errors: dict[str, str] = {}
    node.add_on_set_parameters_callback(_make_set_callback(errors, gate))
    for spec in SPECS:
        default = _declared_default(spec)
        try:
            node.declare_parameter(spec.name, default, _descriptor(spec))
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            node.declare_parameter(spec.name, default, _descriptor(spec), ignore_override=True)
            # Recorded after the default was accepted, which clears the parameter's error.
            errors[spec.name] = f"{spec.name}: {error}"
    return errors


def read_parameters(node: Node) -> dict[str, Any]:
    """Current values of every parameter, as plain Python values."""
    return {spec.name: node.get_parameter(spec.name).value for spec in SPECS}


def _declared_default(spec: ParamSpec) -> Any:
    # An empty list would be typed as a byte array: an empty double array is declared unset.
    if spec.kind == "double[]":
        return [float(v) for v in spec.default] or None
    return spec.default


def _descriptor(spec: ParamSpec) -> Any:
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(description=spec.description)
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    elif spec.lengths:
        counts = " or ".join(str(n) for n in spec.lengths)
        descriptor.additional_constraints = f"{counts} values"
    if spec.kind == "int" and spec.range:
        descriptor.integer_range = [IntegerRange(
            from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    if spec.kind in ("double", "double[]"):
        descriptor.dynamic_typing = True  # accept integers; check_value converts and checks
        if spec.range:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0)]
    return descriptor


def _make_set_callback(errors: dict[str, str],
                       gate: Gate | None) -> Callable[[list[Parameter]], Any]:
    def on_set(parameters: list[Parameter]) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        problems = []
        changes: list[tuple[ParamSpec, Any]] = []
        for parameter in parameters:
            spec = SPECS_BY_NAME.get(parameter.name)
            if spec is None:
                continue
            value, error = check_value(spec, parameter.value)
            if error:
                problems.append(error)
            else:
                changes.append((spec, value))
        if not problems and changes and gate is not None:
            refusal = gate(changes)
            if refusal:
                problems.append(refusal)
        if not problems:
            for spec, _ in changes:
                errors.pop(spec.name, None)
        return SetParametersResult(successful=not problems, reason="; ".join(problems))

    return on_set
