"""The center head shared by both trackers: a score map, a size map and an offset map."""
from __future__ import annotations

import torch
from torch import nn

PROBABILITY_FLOOR = 1e-4


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    # Index 0 = conv, 1 = BatchNorm: the official state-dict names depend on this order.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _clamped_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x.sigmoid(), min=PROBABILITY_FLOOR, max=1.0 - PROBABILITY_FLOOR)


def decode_boxes(
    score_map: torch.Tensor, size_map: torch.Tensor, offset_map: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (B, 4) as normalised (cx, cy, w, h) at the best cell, and that cell's score (B,).

    The tracker calls this on a Hann-windowed score map, the head on the raw one.
    """
    batch, _, height, width = score_map.shape
    best_score, index = score_map.flatten(1).max(dim=1)
    index_y = torch.div(index, width, rounding_mode="floor")
    index_x = index % width
    gather_index = index.view(batch, 1, 1).expand(batch, 2, 1)
    size = size_map.flatten(2).gather(2, gather_index).squeeze(-1)
    offset = offset_map.flatten(2).gather(2, gather_index).squeeze(-1)
    cx = (index_x.to(offset.dtype) + offset[:, 0]) / width
    cy = (index_y.to(offset.dtype) + offset[:, 1]) / height
    boxes = torch.stack([cx, cy, size[:, 0], size[:, 1]], dim=1)
    return boxes, best_score


class CenterHead(nn.Module):
    """Three convolution towers over the search-token grid (OSTrack's center predictor)."""

    def __init__(self, in_channels: int = 768, channels: int = 256, feat_size: int = 16):
        super().__init__()
        self.feat_size = feat_size
        widths = [in_channels, channels, channels // 2, channels // 4, channels // 8]
        for branch, out_channels in (("ctr", 1), ("offset", 2), ("size", 2)):
            for i in range(4):
                setattr(self, f"conv{i + 1}_{branch}", _conv_bn_relu(widths[i], widths[i + 1]))
            setattr(self, f"conv5_{branch}", nn.Conv2d(widths[4], out_channels, kernel_size=1))

    def _branch(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        for i in range(1, 6):
            x = getattr(self, f"conv{i}_{branch}")(x)
        return x

    def forward(self, search_tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """search_tokens: (B, feat_size**2, C) in row-major grid order."""
        batch, length, channels = search_tokens.shape
        grid = search_tokens.transpose(1, 2).reshape(batch, channels, self.feat_size, self.feat_size)
        score_map = _clamped_sigmoid(self._branch(grid, "ctr"))
        size_map = _clamped_sigmoid(self._branch(grid, "size"))
        offset_map = self._branch(grid, "offset")
        boxes, _ = decode_boxes(score_map, size_map, offset_map)
        return {
            "score_map": score_map,
            "size_map": size_map,
            "offset_map": offset_map,
            "pred_boxes": boxes.unsqueeze(1),
        }
