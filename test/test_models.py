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
from rgbt_tracking_ros.models.protocol import OUTPUT_MAPS, Geometry, TrackingModel, model_config
from rgbt_tracking_ros.models.registry import config_geometry, load_model_config
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


@pytest.mark.parametrize("name", ["ainet_256", "ainet_384", "dmtrack_rgbt"])
def test_full_size_state_dict_matches_official_keys(name, official_keys):
    expected, total = official_keys(name)
    model = meta_model(name)
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}
    assert sum(p.numel() for p in model.parameters()) == total


@pytest.mark.parametrize("name", ["ainet_256", "ainet_384", "dmtrack_rgbt"])
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


def test_ainet_384_differs_from_256_only_in_position_embeddings():
    small, large = meta_model("ainet_256").state_dict(), meta_model("ainet_384").state_dict()
    assert list(small) == list(large)
    differ = {key: (tuple(small[key].shape), tuple(large[key].shape))
              for key in small if small[key].shape != large[key].shape}
    assert differ == {
        "backbone.pos_embed_z": ((1, 64, 768), (1, 144, 768)),
        "backbone.pos_embed_x": ((1, 256, 768), (1, 576, 768)),
    }
    assert sum(p.numel() for p in meta_model("ainet_384").parameters()) == 136_285_201


@pytest.mark.parametrize("name, tokens", [("ainet_256", 12 * 256), ("ainet_384", 12 * 656)])
def test_official_fusion_cut_of_64_tokens(name, tokens):
    """Both official configs drop 64 leading tokens per layer: all the template tokens at 256
    (so ainet_256 is unchanged), the first 64 of 144 at 384; the head reads the last search
    tokens of the fused sequence. Full size on the meta device."""
    model = meta_model(name)
    geometry = model.geometry
    assert model.config["fusion_cut"] == model.mamba_fusion.cut == 64
    seen = {}
    model.mamba_fusion.fusion.register_forward_hook(lambda module, args, out: seen.update(fused=args[0].shape))
    model.box_head.register_forward_hook(lambda module, args, out: seen.update(head=args[0].shape))
    z = torch.empty(geometry.template_shape(), device="meta")
    x = torch.empty(geometry.search_shape(), device="meta")
    out = model(z, z, x, x)
    assert tuple(seen["fused"]) == (1, tokens, 768)
    assert tuple(seen["head"]) == (1, geometry.search_tokens, 768)
    assert tuple(out["score_map"].shape) == (1, 1, geometry.feat_size, geometry.feat_size)


def _official_fusion(model, fused: list[torch.Tensor], cut: int, search_tokens: int) -> torch.Tensor:
    """The order-dynamic fusion read literally from the description: drop a constant `cut`
    leading tokens of every layer, concatenate the layers, x + Mamba(LN1 x) under LN2, sum the
    per-layer chunks, LayerNorm, keep the last `search_tokens` tokens; kept positions picked
    by index, not by slicing."""
    fusion = model.mamba_fusion
    layer = fusion.fusion[0]
    length = fused[0].shape[1]
    keep = torch.arange(cut, length)
    x = torch.cat([torch.index_select(f, 1, keep) for f in fused], dim=1)
    y = layer.norm2(x + layer.mamba(layer.norm1(x)))
    per_layer = len(keep)
    total = torch.zeros_like(y[:, :per_layer])
    for i in range(len(fused)):
        total = total + y[:, i * per_layer : (i + 1) * per_layer]
    out = fusion.norm(total)
    return torch.index_select(out, 1, torch.arange(per_layer - search_tokens, per_layer))


@pytest.mark.parametrize("cut", [8, 16, 0])
def test_fusion_cut_matches_an_independent_reading_at_small_size(cut):
    """64 x 64 templates (16 tokens), 128 x 128 search (64 tokens): a cut of 8 keeps half the
    template tokens in the fusion, as the official 64 does of the 144 at 384."""
    torch.manual_seed(0)
    model = build_model("ainet_tiny", template_size=64, search_size=128, fusion_cut=cut).eval()
    generator = torch.Generator().manual_seed(3)
    z = [torch.randn(1, 3, 64, 64, generator=generator) for _ in range(2)]
    x = [torch.randn(1, 3, 128, 128, generator=generator) for _ in range(2)]
    with torch.no_grad():
        fused = model.backbone(*z, *x)
        assert [tuple(f.shape) for f in fused] == [(1, 16 + 64, 32)] * 2
        expected = model.box_head(_official_fusion(model, fused, cut, 64))
        out = model(*z, *x)
    for key in OUTPUT_MAPS:
        torch.testing.assert_close(out[key], expected[key], rtol=1e-5, atol=1e-6)
        assert out[key].shape[-2:] == (8, 8)


def test_fusion_cut_changes_the_output_and_is_checked():
    """Cutting 8 of 16 template tokens is not the same model as cutting all of them."""
    torch.manual_seed(0)
    models = [build_model("ainet_tiny", template_size=64, search_size=128, fusion_cut=cut).eval() for cut in (8, 16)]
    models[1].load_state_dict(models[0].state_dict())
    inputs = _inputs_of(models[0].geometry)
    with torch.no_grad():
        fused = models[0].backbone(*inputs)
        a, b = (m.mamba_fusion(fused) for m in models)
    assert a.shape == b.shape == (1, 64, 32)
    assert (a - b).abs().max() > 1e-4  # the kept template tokens reach the search tokens through the scan
    for bad in (17, -1, 2.5):
        with pytest.raises(ValueError, match="fusion_cut"):
            build_model("ainet_tiny", template_size=64, search_size=128, fusion_cut=bad)


def _inputs_of(geometry: Geometry, batch: int = 1):
    generator = torch.Generator().manual_seed(5)
    z = [torch.randn(geometry.template_shape(batch), generator=generator) for _ in range(2)]
    x = [torch.randn(geometry.search_shape(batch), generator=generator) for _ in range(2)]
    return (*z, *x)


@pytest.mark.parametrize("name", available_models())
def test_every_registered_model_implements_the_protocol(name):
    """Geometry read from the config alone equals the built model's; the protocol's methods exist."""
    model = meta_model(name, **({"pretrained": False} if name == "compact_rgbt" else {}))
    assert isinstance(model, TrackingModel)
    assert model.geometry == config_geometry(load_model_config(name))
    assert model.geometry.feat_size == model.box_head.feat_size


@pytest.mark.parametrize("name", ["ainet_tiny", "dmtrack_tiny", "compact_rgbt"])
def test_forward_is_encode_templates_then_track_search(name):
    """The tracker's cached path and the whole forward (training, export) give equal maps."""
    torch.manual_seed(0)
    model = build_model(name, **({"pretrained": False} if name == "compact_rgbt" else {})).eval()
    assert isinstance(model, TrackingModel)
    inputs = _inputs_of(model.geometry, batch=2)
    with torch.no_grad():
        whole = model(*inputs)
        split = model.track_search(model.encode_templates(*inputs[:2]), *inputs[2:])
    for key, channels in OUTPUT_MAPS.items():
        assert whole[key].shape == (2, channels, model.geometry.feat_size, model.geometry.feat_size)
        torch.testing.assert_close(whole[key], split[key], rtol=0, atol=0)


def test_model_config_is_the_config_the_model_was_built_from():
    model = meta_model("dmtrack_tiny", stma_width=4)
    assert model_config(model) == {**load_model_config("dmtrack_tiny"), "stma_width": 4}
    with pytest.raises(ValueError, match="Linear has no model config"):
        model_config(torch.nn.Linear(2, 2))


def test_geometry_validates_and_describes():
    geometry = Geometry.from_config(load_model_config("ainet_384"))
    assert (geometry.template_size, geometry.search_size, geometry.feat_size) == (192, 384, 24)
    assert (geometry.template_factor, geometry.search_factor, geometry.num_templates) == (2.0, 4.0, 1)
    assert (geometry.template_tokens, geometry.search_tokens) == (144, 576)
    assert Geometry.from_config(load_model_config("dmtrack_rgbd")).template_shape(4) == (4, 2, 3, 128, 128)
    with pytest.raises(ValueError, match="multiple of the stride"):
        Geometry(template_size=100, search_size=256)
    with pytest.raises(ValueError, match="search_factor"):
        Geometry(template_size=128, search_size=256, search_factor=0)
