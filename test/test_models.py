"""Models: official key names, shapes and parameter counts at full size (on the meta device),
forward shapes and semantics with tiny configurations of the same code."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rgbt_tracking_ros.models import available_models, build_model
from rgbt_tracking_ros.models.ainet import OrderDynamicMamba, _reorder_chunks
from rgbt_tracking_ros.models.dmtrack import TemporalAdapter
from rgbt_tracking_ros.models.head import decode_boxes
from rgbt_tracking_ros.models.selective_scan import selective_scan_reference


def meta_model(name: str, **overrides):
    with torch.device("meta"):
        return build_model(name, **overrides)


def trainable_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_registry_lists_the_published_models():
    assert {"ainet_256", "dmtrack_rgbt", "dmtrack_rgbd", "dmtrack_rgbe"} <= set(available_models())


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="ainet_256"):
        build_model("no_such_model")


@pytest.mark.parametrize("name", ["ainet_256", "dmtrack_rgbt"])
def test_full_size_state_dict_matches_official_keys(name, official_keys):
    expected, total = official_keys(name)
    model = meta_model(name)
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}
    assert sum(p.numel() for p in model.parameters()) == total


@pytest.mark.parametrize("name", ["ainet_256", "dmtrack_rgbt"])
def test_official_state_dict_loads_strictly(name, official_keys):
    expected, _ = official_keys(name)
    model = meta_model(name)
    state = {key: torch.empty(shape, device="meta") for key, shape in expected.items()}
    result = model.load_state_dict(state, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_ainet_parameter_budget():
    model = meta_model("ainet_256")
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert round(count(model) / 1e6, 1) == 136.0
    assert count(model.backbone.cross_mamba[0]) == 3_068_928
    assert round(count(model.mamba_fusion) / 1e6, 2) == 6.63
    assert round(count(model.box_head) / 1e6, 2) == 6.47
    assert trainable_count(model) == count(model)


@pytest.mark.parametrize("width, expected", [(12, 786_432), (16, 934_368)])
def test_dmtrack_trains_only_adapters(width, expected):
    model = meta_model("dmtrack_rgbt", stma_width=width)
    assert trainable_count(model) == expected
    assert all("adap" in n for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("name, templates", [("dmtrack_rgbt", 3), ("dmtrack_rgbd", 2), ("dmtrack_rgbe", 3)])
def test_dmtrack_variants_template_counts(name, templates):
    assert meta_model(name).num_templates == templates


def _inputs(batch: int, templates: int | None):
    torch.manual_seed(0)
    shape = (batch, 3, 128, 128) if templates is None else (batch, templates, 3, 128, 128)
    return torch.randn(shape), torch.randn(shape), torch.randn(batch, 3, 256, 256), torch.randn(batch, 3, 256, 256)


@pytest.mark.parametrize("name, templates", [("ainet_tiny", None), ("dmtrack_tiny", 3), ("dmtrack_tiny", 1)])
def test_tiny_forward_shapes_and_box_semantics(name, templates):
    model = build_model(name).eval()
    with torch.no_grad():
        out = model(*_inputs(2, templates))
    assert out["score_map"].shape == (2, 1, 16, 16)
    assert out["size_map"].shape == (2, 2, 16, 16)
    assert out["offset_map"].shape == (2, 2, 16, 16)
    assert out["pred_boxes"].shape == (2, 1, 4)
    assert out["score_map"].min() >= 1e-4 and out["score_map"].max() <= 1 - 1e-4
    boxes, _ = decode_boxes(out["score_map"], out["size_map"], out["offset_map"])
    torch.testing.assert_close(out["pred_boxes"][:, 0], boxes)


def test_decode_boxes_reads_the_peak_cell():
    score = torch.full((1, 1, 16, 16), 0.1)
    score[0, 0, 5, 9] = 0.9
    size = torch.zeros(1, 2, 16, 16)
    size[0, :, 5, 9] = torch.tensor([0.25, 0.5])
    offset = torch.zeros(1, 2, 16, 16)
    offset[0, :, 5, 9] = torch.tensor([0.5, 0.25])
    boxes, best = decode_boxes(score, size, offset)
    torch.testing.assert_close(boxes, torch.tensor([[9.5 / 16, 5.25 / 16, 0.25, 0.5]]))
    assert best.item() == pytest.approx(0.9)


def test_ainet_modalities_are_not_interchangeable():
    """The DFM gates are asymmetric in use: swapping RGB and thermal changes the output."""
    model = build_model("ainet_tiny").eval()
    z_rgb, z_x, x_rgb, x_x = _inputs(1, None)
    with torch.no_grad():
        a = model(z_rgb, z_x, x_rgb, x_x)["score_map"]
        b = model(z_x, z_rgb, x_x, x_rgb)["score_map"]
        c = model(z_rgb, z_x, x_rgb, x_x)["score_map"]
    torch.testing.assert_close(a, c)
    assert not torch.allclose(a, b)


def _template_features_reversed_both_ways(model):
    """Template-token features for templates in order, and for the reversed order mapped back."""
    z_rgb, z_x, x_rgb, x_x = _inputs(1, 3)
    with torch.no_grad():
        forward = model.backbone(z_rgb, z_x, x_rgb, x_x)[:, : 3 * 64].reshape(3, 64, -1)
        backward = model.backbone(z_rgb.flip(1), z_x.flip(1), x_rgb, x_x)[:, : 3 * 64]
    return forward, backward.reshape(3, 64, -1).flip(0)


def test_dmtrack_template_order_matters_only_through_the_temporal_adapter():
    model = build_model("dmtrack_tiny").eval()
    forward, backward = _template_features_reversed_both_ways(model)
    torch.testing.assert_close(forward, backward, atol=1e-4, rtol=1e-4)  # attention alone: order-free
    with torch.no_grad():
        for block in model.backbone.blocks:
            for adapter in (block.adap_tem1, block.adap_tem2):
                adapter.adapter_mid.weight.normal_()
                adapter.adapter_up.weight.normal_(std=0.5)
    forward, backward = _template_features_reversed_both_ways(model)
    assert (forward - backward).abs().max() > 1e-2


def test_dmtrack_training_changes_only_adapters_and_keeps_head_statistics():
    model = build_model("dmtrack_tiny").train()
    assert not model.box_head.training
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(*_inputs(2, 3))
    (out["score_map"].mean() + out["size_map"].mean()).backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("adap" in n for n in changed)
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())


def test_reorder_chunks_permutes_and_restores():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    order = torch.tensor([[3, 0, 2, 1], [1, 2, 3, 0]])
    moved = _reorder_chunks(x, order, 4)
    for b in range(2):
        for position, chunk in enumerate(order[b].tolist()):
            torch.testing.assert_close(moved[b, :, 2 * position : 2 * position + 2], x[b, :, 2 * chunk : 2 * chunk + 2])
    torch.testing.assert_close(_reorder_chunks(moved, torch.argsort(order, dim=1), 4), x)


def _reference_branch(module, xz, suffix):
    """One scan order written out plainly: conv by hand, then the sequential scan."""
    x, z = xz.chunk(2, dim=1)
    conv = getattr(module, f"conv1d{suffix}")
    padded = F.pad(x, (conv.kernel_size[0] - 1, 0))
    windows = padded.unfold(-1, conv.kernel_size[0], 1)
    x = F.silu((windows * conv.weight[:, 0][None, :, None, :]).sum(-1) + conv.bias[None, :, None])
    x_proj, dt_proj = getattr(module, f"x_proj{suffix}"), getattr(module, f"dt_proj{suffix}")
    a_log = getattr(module, f"A{suffix}_log")
    rank, state = dt_proj.in_features, a_log.shape[1]
    projected = torch.einsum("bdl,rd->brl", x, x_proj.weight)
    dt, b, c = projected[:, :rank], projected[:, rank : rank + state], projected[:, rank + state :]
    delta = torch.einsum("brl,dr->bdl", dt, dt_proj.weight)
    return selective_scan_reference(
        x, delta, -torch.exp(a_log), b, c, getattr(module, f"D{suffix}"), z=z,
        delta_bias=dt_proj.bias, delta_softplus=True,
    )


def test_order_dynamic_mamba_matches_a_plain_reading_of_the_three_scans():
    torch.manual_seed(1)
    chunks, chunk_len, dim = 4, 5, 8
    module = OrderDynamicMamba(dim, chunks, d_state=4, expand=2, guide_length=16, guide_widths=(8, 4))
    hidden = torch.randn(2, chunks * chunk_len, dim)
    with torch.no_grad():
        ours = module(hidden)
        xz = module.in_proj(hidden).transpose(1, 2)
        pieces = list(xz.split(chunk_len, dim=-1))
        forward = _reference_branch(module, xz, "")
        backward = _reference_branch(module, torch.cat(pieces[::-1], dim=-1), "_b")
        backward = torch.cat(list(backward.split(chunk_len, dim=-1))[::-1], dim=-1)
        order = module.chunk_order(hidden)
        shifted = []
        for b in range(2):
            sample = [p[b : b + 1] for p in pieces]
            scanned = _reference_branch(module, torch.cat([sample[i] for i in order[b].tolist()], dim=-1), "_s")
            out_pieces = scanned.split(chunk_len, dim=-1)
            restored = [None] * chunks
            for position, chunk in enumerate(order[b].tolist()):
                restored[chunk] = out_pieces[position]
            shifted.append(torch.cat(restored, dim=-1))
        expected = module.out_proj(((forward + backward + torch.cat(shifted)) / 3).transpose(1, 2))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_temporal_adapter_convolves_each_template_position_over_time():
    torch.manual_seed(2)
    adapter = TemporalAdapter(dim=6, width=3, template_tokens=4, official_init=False)
    with torch.no_grad():
        adapter.adapter_mid.weight.normal_()
        adapter.adapter_mid.bias.normal_()
        adapter.adapter_up.weight.normal_()
    adapter.eval()
    templates, search = 3, 5
    x = torch.randn(2, templates * 4 + search, 6)
    with torch.no_grad():
        ours = adapter(x, templates)
        down = adapter.adapter_down(x)
        expected = down.clone()
        for b in range(2):
            for position in range(4):
                series = down[b, [t * 4 + position for t in range(templates)]].T  # (width, T)
                mixed = series + adapter.adapter_mid(series[None])[0]
                for t in range(templates):
                    expected[b, t * 4 + position] = mixed[:, t]
        expected = adapter.adapter_up(expected)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("official", [True, False])
def test_adapters_start_silent_and_only_the_released_init_zeroes_their_input(official):
    model = build_model("dmtrack_tiny", official_init=official)
    block = model.backbone.blocks[0]
    for adapter in (block.adap_t, block.adap2_t, block.adap_tem1, block.adap_tem2):
        assert not adapter.adapter_up.weight.any() and not adapter.adapter_up.bias.any()
        assert adapter.adapter_down.weight.any() != official
    assert block.adap_t.adapter_mid.weight.any() != official
