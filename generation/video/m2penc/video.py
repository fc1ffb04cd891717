"""Guidance stacks as video frames: a 2 x 3 grid per frame (depth | normal | semantic over DWPose | mask | heatmaps).

Why one layout for predictions, generated dances and ground truth: the comparison video puts them side by side,
and the same cell must mean the same map in every column.
"""
from __future__ import annotations

import numpy as np

from .data import GUIDANCE_GROUPS


def guidance_grid(guidance: np.ndarray, heatmaps: np.ndarray, scale: int = 4) -> np.ndarray:
    """uint8 (T, 2 S scale, 3 S scale, 3) from guidance (T, 11, S, S) in [0, 1] (or uint8) and heatmaps (T, K, S, S).

    Cells: depth, normal, semantic / DWPose, mask, the heatmaps' per-pixel maximum divided by max(the frame's
    peak, 0.1): a predicted heatmap is a blurred, low bump; ground truth peaks at 1 and is unchanged.
    """
    g = guidance.astype(np.float32) / 255.0 if guidance.dtype == np.uint8 else np.asarray(guidance, np.float32)

    def rgb(group: str) -> np.ndarray:
        a = g[:, GUIDANCE_GROUPS[group]]
        if a.shape[1] == 1:
            a = np.repeat(a, 3, axis=1)
        return a.transpose(0, 2, 3, 1)

    heat = np.clip(np.asarray(heatmaps, np.float32).max(axis=1), 0.0, None)
    heat = np.clip(heat / np.maximum(heat.max(axis=(1, 2), keepdims=True), 0.1), 0.0, 1.0)
    heat_rgb = np.stack([heat, heat * 0.6, np.zeros_like(heat)], axis=-1)
    top = np.concatenate([rgb("depth"), rgb("normal"), rgb("semantic")], axis=2)
    bottom = np.concatenate([rgb("dwpose"), rgb("mask"), heat_rgb], axis=2)
    grid = np.concatenate([top, bottom], axis=1)
    img = np.rint(np.clip(grid, 0.0, 1.0) * 255.0).astype(np.uint8)
    if scale > 1:
        img = img.repeat(scale, axis=1).repeat(scale, axis=2)
    return img
