"""The compact model: packaged ImageNet backbone, frozen; small trainable part; template caching."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rgbt_tracking_ros.data.synthetic import make_sequence
from rgbt_tracking_ros.models import build_model
from rgbt_tracking_ros.models.checkpoints import CheckpointMismatchError, read_checkpoint, save_checkpoint
from rgbt_tracking_ros.models.efficientnet_lite import (
    EfficientNetLite0Features,
    load_imagenet_weights,
    packaged_weights_path,
)
from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("compact_rgbt").eval()


def _inputs(model, batch: int = 1):
    generator = torch.Generator().manual_seed(1)
    z, x = model.geometry.template_size, model.geometry.search_size
    return (
        torch.randn(batch, 3, z, z, generator=generator),
        torch.randn(batch, 3, z, z, generator=generator),
        torch.randn(batch, 3, x, x, generator=generator),
        torch.randn(batch, 3, x, x, generator=generator),
    )


def test_backbone_is_the_packaged_imagenet_network():
    features = EfficientNetLite0Features()
    load_imagenet_weights(features)
    weights = read_checkpoint(packaged_weights_path()).state_dict
    for key, value in features.state_dict().items():
        assert torch.equal(value, weights[key]), key
    with torch.no_grad():
        assert features(torch.zeros(1, 3, 256, 256)).shape == (1, 112, 16, 16)
        assert features(torch.zeros(1, 3, 128, 128)).shape == (1, 112, 8, 8)


def test_folding_batch_norms_keeps_the_features():
    features = EfficientNetLite0Features()
    load_imagenet_weights(features)
    features.eval()
    image = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = features(image)
        features.fold_batch_norms()
        after = features(image)
    assert not any("_bn" in key for key in features.state_dict())
    assert (after - before).abs().max() <= 1e-4 * before.abs().max()


def test_folding_refuses_a_batch_norm_without_running_statistics():
    features = EfficientNetLite0Features()
    features._bn0 = torch.nn.BatchNorm2d(32, track_running_stats=False)
    with pytest.raises(ValueError, match="without running statistics"):
        features.fold_batch_norms()


def test_only_the_small_part_trains(model):
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(name.startswith("backbone.") for name in trainable)
    assert sum(p.numel() for name, p in model.named_parameters() if name in trainable) < 1_000_000
    model.train()
    try:
        assert not model.backbone.training and model.box_head.training
    finally:
        model.eval()


def test_outputs_fit_the_tracker(model):
    with torch.no_grad():
        output = model(*_inputs(model, 2))
    grid = (model.geometry.feat_size,) * 2
    assert output["score_map"].shape == (2, 1, *grid)
    assert output["size_map"].shape == (2, 2, *grid)
    assert output["offset_map"].shape == (2, 2, *grid)


def test_encoded_templates_give_the_same_output(model):
    z_rgb, z_x, x_rgb, x_x = _inputs(model)
    with torch.no_grad():
        whole = model(z_rgb, z_x, x_rgb, x_x)
        split = model.track_search(model.encode_templates(z_rgb, z_x), x_rgb, x_x)
    for key in ("score_map", "size_map", "offset_map"):
        torch.testing.assert_close(split[key], whole[key])


@pytest.mark.parametrize("target_model", [False, True])
def test_tracker_encodes_the_template_once(model, target_model):
    calls = []
    handle = model.backbone.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[-1]))
    try:
        sequence = make_sequence(3, frames=4)
        tracker = RGBTTracker(model, TrackerConfig(device="cpu", backend="torch", target_model=target_model))
        tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
        for rgb, thermal in zip(sequence.rgb[1:], sequence.thermal[1:]):
            tracker.track(rgb, thermal)
    finally:
        handle.remove()
    # The online target model fits once on the first frame's search crop and probes the head's
    # size on two more (TargetModelConfig.size_probe): three more search calls, then one per frame.
    z, x = model.geometry.template_size, model.geometry.search_size
    assert calls == [z] + [x] * (3 * target_model) + [x, x, x]


def test_checkpoint_without_the_packaged_backbone_loads(model, tmp_path):
    trained = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    trained["box_head.conv5_ctr.bias"] = torch.full_like(trained["box_head.conv5_ctr.bias"], 0.25)
    path = tmp_path / "compact.pt"
    torch.save({"format": "rgbt_tracking_ros/1", "config": model.config, "net": trained, "metadata": {}}, path)
    loaded = load_model(checkpoint=path)
    assert float(loaded.box_head.conv5_ctr.bias.detach()) == 0.25
    assert torch.equal(loaded.backbone._conv_stem.weight, model.backbone._conv_stem.weight)
    del trained["box_head.conv5_ctr.weight"]
    torch.save({"format": "rgbt_tracking_ros/1", "config": model.config, "net": trained, "metadata": {}}, path)
    with pytest.raises(CheckpointMismatchError, match="conv5_ctr.weight"):
        load_model(checkpoint=path)


def test_shipped_weights_carry_the_registered_config():
    """Loading the shipped file by path must give the same model and thresholds as loading
    it by name: a stale `tracker:` section stored at training time would win otherwise."""
    from rgbt_tracking_ros.models import load_model_config
    from rgbt_tracking_ros.models.loading import shipped_weights

    registered = load_model_config("compact_rgbt")
    path = shipped_weights(registered)
    assert path is not None
    assert read_checkpoint(path).model_config == registered


def test_whole_checkpoint_round_trips(model, tmp_path):
    save_checkpoint(tmp_path / "whole.pt", model, model.config)
    loaded = load_model(checkpoint=tmp_path / "whole.pt").eval()
    with torch.no_grad():
        np.testing.assert_allclose(
            loaded(*_inputs(model))["score_map"].numpy(), model(*_inputs(model))["score_map"].numpy(), atol=1e-6
        )


def test_sizes_must_fit_the_backbone_stride():
    with pytest.raises(ValueError, match="multiples of 16"):
        build_model("compact_rgbt", search_size=250, pretrained=False)
