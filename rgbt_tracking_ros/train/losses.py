"""The trackers' training objective: focal loss on the score map, GIoU and L1 on the box.

Boxes are normalised to the search crop; (cx, cy, w, h) from the model, xyxy for the
box losses as in the published recipe.
"""
from __future__ import annotations

import math

import torch

FOCAL_WEIGHT, GIOU_WEIGHT, L1_WEIGHT = 1.0, 2.0, 5.0


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def generalized_iou(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GIoU and IoU of matching rows of two (N, 4) xyxy box sets."""
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_p = (pred[:, 2:] - pred[:, :2]).clamp(min=0).prod(-1)
    area_t = (target[:, 2:] - target[:, :2]).clamp(min=0).prod(-1)
    union = area_p + area_t - inter
    iou = inter / union.clamp(min=1e-7)
    hull = (torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])).clamp(min=0).prod(-1)
    return iou - (hull - union) / hull.clamp(min=1e-7), iou


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: the largest centre shift that keeps IoU above min_overlap."""
    candidates = []
    for a, b, c in (
        (1, height + width, width * height * (1 - min_overlap) / (1 + min_overlap)),
        (4, 2 * (height + width), (1 - min_overlap) * width * height),
        (4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height),
    ):
        candidates.append((b + math.sqrt(b * b - 4 * a * c)) / 2)
    return min(candidates)


def target_heatmap(boxes: torch.Tensor, feat_size: int) -> torch.Tensor:
    """Gaussian peaks (B, 1, S, S) at each target's centre cell, 1 exactly at the centre."""
    grid = torch.arange(feat_size, dtype=boxes.dtype, device=boxes.device)
    maps = []
    for cx, cy, w, h in (boxes * feat_size).tolist():
        radius = max(0, int(gaussian_radius(h, w)))
        sigma = (2 * radius + 1) / 6
        centre_x, centre_y = int(cx), int(cy)
        heat = torch.exp(-((grid[None, :] - centre_x) ** 2 + (grid[:, None] - centre_y) ** 2) / (2 * sigma**2))
        maps.append(heat)
    return torch.stack(maps).unsqueeze(1)


def focal_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet focal loss (alpha 2, beta 4) over probabilities already clamped away from 0/1."""
    positive = target.eq(1).float()
    negative_weight = (1 - target).pow(4) * (1 - positive)
    positive_loss = (torch.log(pred) * (1 - pred).pow(2) * positive).sum()
    negative_loss = (torch.log(1 - pred) * pred.pow(2) * negative_weight).sum()
    return -(positive_loss + negative_loss) / positive.sum().clamp(min=1)


def tracking_loss(outputs: dict[str, torch.Tensor], target_boxes: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the three losses; target_boxes (B, 4) normalised cx, cy, w, h."""
    pred = cxcywh_to_xyxy(outputs["pred_boxes"][:, 0])
    target = cxcywh_to_xyxy(target_boxes)
    giou, iou = generalized_iou(pred, target)
    giou_loss = (1 - giou).mean()
    l1 = torch.nn.functional.l1_loss(pred, target)
    heatmap = target_heatmap(target_boxes, outputs["score_map"].shape[-1])
    focal = focal_loss(outputs["score_map"], heatmap)
    total = FOCAL_WEIGHT * focal + GIOU_WEIGHT * giou_loss + L1_WEIGHT * l1
    return total, {"focal": focal.item(), "giou": giou_loss.item(), "l1": l1.item(), "iou": iou.mean().item()}
