"""`rgbt-track export`: a tracker's network as ONNX for robots without PyTorch, checked.

The graph is the whole forward at batch 1 (templates + search crops -> score, size and
offset maps); the tracker's crops, Hann window and decoding stay outside, in the host code.
Shapes are fixed, so the selective scan's loops unroll into plain ONNX operators. The check
runs the file in onnxruntime on CPU beside PyTorch on real crops of a synthetic sequence: the
maps must be close and the decoded boxes the same.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..export import DEFAULT_OPSET, check_onnx, export_onnx
from ..models.loading import load_model


def export_command(args: argparse.Namespace) -> int:
    model = load_model(args.model, args.checkpoint)
    out = export_onnx(model, Path(args.out), args.opset)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, opset {args.opset}, batch 1)")
    if args.no_check:
        return 0
    result = check_onnx(model, out)
    print(f"onnxruntime (CPU) vs PyTorch: max map difference {result['max_map_difference']:.2e}, "
          f"same peak cell: {result['peak_cell_same']}, max box difference {result['max_box_difference']:.2e}")
    if not result["ok"]:
        print(f"rgbt-track export: the exported model does not match PyTorch: {result}")
        return 1
    return 0


def add_export_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "export", help="export a model to ONNX and check it in onnxruntime",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="compact_rgbt", help="registered model name (compact_rgbt, dmtrack_rgbt, ...)")
    parser.add_argument("--checkpoint", default=None, help="weights (default: the model's shipped weights)")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (17 or newer)")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    parser.set_defaults(func=export_command)
