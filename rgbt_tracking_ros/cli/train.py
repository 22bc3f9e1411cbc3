"""`rgbt-track train`: train a registered model with its recipe on benchmark folders and/or
synthetic sequences, on one device or many (launch with torchrun for DDP)."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..train.step import AMP_MODES

# Command-line option (dest) -> recipe key; given options replace the model's recipe values.
RECIPE_OPTIONS = {
    "epochs": (int, "epochs to train"),
    "pairs_per_epoch": (int, "training samples per epoch, all processes together"),
    "batch_size": (int, "pairs per step and process"),
    "lr": (float, "learning rate of the parameters outside the recipe's lr_groups"),
    "warmup_steps": (int, "steps of linear learning-rate warm-up"),
    "lr_drop_epoch": (int, "0-based epoch from which the learning rate is multiplied by lr_drop_factor"),
    "grad_clip": (float, "gradient norm clipping"),
    "max_gap": (int, "most frames between a template and the search frame"),
    "workers": (int, "data loading processes per training process"),
    "seed": (int, "seed of the data stream, the initial weights and dropout"),
}


def train(args: argparse.Namespace) -> int:
    from ..train.trainer import TrainJob, run

    job = TrainJob(
        out=Path(args.out),
        data=args.data or [],
        model=args.model,
        resume=args.resume,
        init=args.init,
        device=args.device,
        amp=args.amp,
        overrides={name: getattr(args, name) for name in RECIPE_OPTIONS},
        save_trainable_only=args.save_trainable_only,
        keep_last=args.keep_last,
        progress=not args.no_progress,
    )
    run(job)
    return 0


def add_train_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "train",
        help="train a model (its recipe is the 'training:' block of its config)",
        description=__doc__ + " Example: rgbt-track train --model ainet_256 --init DropTrack.pth.tar "
        "--data lasher:/data/LasHeR/trainingset --out runs/ainet",
    )
    parser.add_argument("--model", help="a registered model name or YAML config (optional with --resume)")
    parser.add_argument(
        "--data",
        action="append",
        metavar="KIND:WHERE",
        help="training data, repeatable: lasher:/path/to/LasHeR/trainingset (or gtot, rgbt210, rgbt234, "
        "vtuav, otb), synthetic:0-199 or synthetic:0-199:FRAMES, real:FOLDER (built by `rgbt-track data build`)",
    )
    parser.add_argument("--out", required=True, help="output folder: model.pt, train_log.jsonl, checkpoints/")
    parser.add_argument("--init", help="weights to start from: a checkpoint of the model, or an OSTrack/DropTrack file")
    parser.add_argument("--resume", help="continue a run from one of its checkpoints/epoch_*.pt")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=AMP_MODES, help="mixed precision (default: bf16 on cuda, off on cpu)")
    for name, (kind, meaning) in RECIPE_OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=f"{meaning} (default: the recipe's)")
    parser.add_argument(
        "--save-trainable-only",
        action="store_true",
        help="also write model_trainable.pt with only the trained tensors (small, for shipping adapters)",
    )
    parser.add_argument("--keep-last", type=int, default=0, help="epoch checkpoints to keep (default 0: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=train)
