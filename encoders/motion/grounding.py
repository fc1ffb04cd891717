"""Root translation from leg forward kinematics: feet on the floor, support foot planted.

Why: posed legs (the procedural corpus, a generator's rotations) say nothing about where the pelvis
is. Height: the root is lifted so the lowest foot joint touches y = 0 in every frame (no floating, no
sinking; knee bends lower the body, pointed ankles raise it). Horizontal: the support joint (the lowest
foot joint, with hysteresis) is an anchor that stays fixed on the floor, so the pelvis moves around it;
stepping legs therefore make the body travel and turning pivots on the support foot, with no foot
sliding by construction.
"""
from __future__ import annotations

import numpy as np

from encoders.motion.skeleton import FOOT_JOINTS, Skeleton

SWITCH_MARGIN_M = 0.008     # another foot joint must be this much lower to take over the support


def support_joints(foot_y: np.ndarray, margin: float = SWITCH_MARGIN_M) -> np.ndarray:
    """(T,) index (into the foot joints) of the support joint per frame: lowest, with hysteresis."""
    best = np.argmin(foot_y, axis=1).tolist()
    low = foot_y.min(axis=1).tolist()
    ys = foot_y.tolist()
    out = np.empty(len(best), dtype=np.int64)
    cur = best[0]
    for t, b in enumerate(best):
        if b != cur and low[t] < ys[t][cur] - margin:
            cur = b
        out[t] = cur
    return out


def foot_positions(rotations: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(T, 4, 3) positions of the FOOT_JOINTS relative to the root, from (T, J, 3, 3) local rotations.

    Only the leg chains (pelvis -> hip -> knee -> ankle -> foot) are evaluated: grounding needs nothing
    else, and this is the hot loop of procedural corpus generation.
    """
    out = {}
    glob: dict[int, np.ndarray] = {}
    for name in FOOT_JOINTS:
        chain = []
        j = skeleton.index(name)
        while j >= 0:
            chain.append(j)
            j = skeleton.parents[j]
        chain.reverse()
        pos = np.zeros((rotations.shape[0], 3))
        for a, b in zip(chain[:-1], chain[1:]):
            if a not in glob:
                p = skeleton.parents[a]
                glob[a] = rotations[:, a] if p < 0 else glob[p] @ rotations[:, a]
            pos = pos + glob[a] @ skeleton.offsets[b]
        out[name] = pos
    return np.stack([out[n] for n in FOOT_JOINTS], axis=1)


def ground(rotations: np.ndarray, skeleton: Skeleton, start_xz: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(T, J, 3, 3) local rotations -> root translation (T, 3).

    The root translation keeps the support foot joint fixed while it supports and puts the lowest foot
    joint at height 0; the first frame's root starts at ``start_xz``.
    """
    foot = foot_positions(rotations, skeleton)              # (T, 4, 3) relative to the root
    t_len = len(foot)
    height = -foot[:, :, 1].min(axis=1)
    sup = support_joints(foot[:, :, 1])
    p = foot[np.arange(t_len), sup][:, [0, 2]]                 # support joint xz relative to root
    # anchor jumps where the support changes keep the root continuous: A += p_new(t) - p_old(t)
    jump = np.zeros((t_len, 2))
    change = np.nonzero(sup[1:] != sup[:-1])[0] + 1
    jump[change] = foot[change, sup[change]][:, [0, 2]] - foot[change, sup[change - 1]][:, [0, 2]]
    anchor = np.asarray(start_xz, dtype=np.float64) + p[0] + np.cumsum(jump, axis=0)
    root_xz = anchor - p
    return np.stack([root_xz[:, 0], height, root_xz[:, 1]], axis=1)
