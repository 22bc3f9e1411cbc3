"""A tracker's network as ONNX for robots without PyTorch, checked (`rgbt-track export`).

The graph is the whole forward at batch 1 (templates + search crops -> score, size and
offset maps); the tracker's crops, Hann window and decoding stay outside, in the host code.
Shapes are fixed, so the selective scan's loops unroll into plain ONNX operators. The check
runs the file in onnxruntime on CPU beside PyTorch on real crops of a synthetic sequence: the
maps must be close and the decoded boxes the same.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from rgbt_tracking_ros.data.synthetic import make_sequence
from rgbt_tracking_ros.models.head import decode_boxes
from rgbt_tracking_ros.models.protocol import model_geometry
from rgbt_tracking_ros.tracker.geometry import crop_square, hann_window
from rgbt_tracking_ros.tracker.preprocess import thermal_to_rgb8, to_tensor

INPUT_NAMES = ("template_rgb", "template_thermal", "search_rgb", "search_thermal")
OUTPUT_NAMES = ("score_map", "size_map", "offset_map")
DEFAULT_OPSET = 18
MIN_OPSET = 17  # LayerNormalization is an operator from 17 on
MAP_TOLERANCE = 1e-4  # max abs difference of any map value, ONNX Runtime against PyTorch
BOX_TOLERANCE = 1e-5  # of the decoded normalised boxes (a different peak cell fails outright)


class OnnxCheck(TypedDict):
    """What `check_onnx` found; `ok` when maps and boxes agree within the tolerances."""

    max_map_difference: float
    peak_cell_same: bool
    max_box_difference: float
    box_torch: list[float]
    box_onnx: list[float]
    ok: bool


class MapsOnly(nn.Module):
    """The model's forward with the three head maps as a tuple, in a fixed order."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(*inputs)
        return tuple(output[name] for name in OUTPUT_NAMES)


def sample_inputs(model: nn.Module, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Template and search crops from a synthetic sequence, as the tracker makes them (the
    model's geometry: sizes, factors, template count): every template from frame 0's box, the
    search region from frame 1 around it."""
    geometry = model_geometry(model)
    sequence = make_sequence(seed, frames=2)
    box = sequence.boxes[0]
    thermal = [thermal_to_rgb8(frame) for frame in sequence.thermal]
    crops = []
    for frame, factor, size in (
        (0, geometry.template_factor, geometry.template_size),
        (1, geometry.search_factor, geometry.search_size),
    ):
        for image in (sequence.rgb[frame], thermal[frame]):
            crops.append(to_tensor(crop_square(image, box, factor, size)[0]))
    if geometry.num_templates > 1:
        crops[0:2] = [crop.unsqueeze(1).repeat(1, geometry.num_templates, 1, 1, 1) for crop in crops[0:2]]
    return tuple(crops)


def export_onnx(model: nn.Module, out: Path, opset: int = DEFAULT_OPSET, seed: int = 0) -> Path:
    """Write the model's forward as ONNX at batch 1, weights inside the file."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be {MIN_OPSET} or newer, got {opset}")
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = MapsOnly(model).eval()
    # The optimiser warns once per unrolled scan step that it leaves Split nodes alone.
    optimiser_log = logging.getLogger("onnxscript")
    level = optimiser_log.level
    optimiser_log.setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            torch.onnx.export(
                wrapper, sample_inputs(model, seed), str(out), input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES), opset_version=opset, dynamo=True,
                external_data=False, verbose=False,
            )
    finally:
        optimiser_log.setLevel(level)
    return out


def _decode(maps: list[npt.NDArray[np.float32]], window: torch.Tensor) -> tuple[npt.NDArray[np.float32], int]:
    """The tracker's decoding: boxes from the Hann-windowed score map, and the peak cell."""
    score, size, offset = (torch.from_numpy(np.asarray(m, dtype=np.float32)) for m in maps)
    boxes, _ = decode_boxes(window * score, size, offset)
    return boxes.numpy()[0], int((window * score).flatten().argmax())


def check_onnx(model: nn.Module, path: Path, seed: int = 1) -> OnnxCheck:
    """Run the file in onnxruntime on CPU and PyTorch on the same crops; compare maps and boxes."""
    import onnxruntime

    inputs = sample_inputs(model, seed)
    with torch.no_grad():
        expected = [t.numpy() for t in MapsOnly(model).eval()(*inputs)]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(list(OUTPUT_NAMES), {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs)})
    window = torch.from_numpy(hann_window(model_geometry(model).feat_size))[None, None].float()
    box_torch, cell_torch = _decode(expected, window)
    box_onnx, cell_onnx = _decode(actual, window)
    map_difference = max(float(np.abs(a - e).max()) for a, e in zip(actual, expected))
    box_difference = float(np.abs(box_onnx - box_torch).max())
    return OnnxCheck(
        max_map_difference=map_difference,
        peak_cell_same=cell_torch == cell_onnx,
        max_box_difference=box_difference,
        box_torch=box_torch.tolist(),
        box_onnx=box_onnx.tolist(),
        ok=map_difference <= MAP_TOLERANCE and cell_torch == cell_onnx and box_difference <= BOX_TOLERANCE,
    )
