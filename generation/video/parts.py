"""Body-part labels of the guidance's semantic map, and the colours they are written with.

Why our own table: Champ colours SMPL vertices by their dominant skinning joint in Blender; without the
(licence-restricted) SMPL files there is no such segmentation, so the capsule body carries one label per
capsule. Left and right limbs get distinct labels, because a semantic map that confuses them is useless
as guidance for a dance (which arm is raised is the whole point). Id 0 is the background, and its colour
is black, as in Champ's maps after masking.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np


class BodyPart(IntEnum):
    """Part ids stored in :attr:`GuidanceFrames.labels` (uint8); 0 is no body."""

    BACKGROUND = 0
    HEAD = 1
    NECK = 2
    TORSO = 3
    PELVIS = 4
    LEFT_UPPER_ARM = 5
    RIGHT_UPPER_ARM = 6
    LEFT_FOREARM = 7
    RIGHT_FOREARM = 8
    LEFT_HAND = 9
    RIGHT_HAND = 10
    LEFT_THIGH = 11
    RIGHT_THIGH = 12
    LEFT_SHIN = 13
    RIGHT_SHIN = 14
    LEFT_FOOT = 15
    RIGHT_FOOT = 16


NUM_PARTS = len(BodyPart)

#: RGB colour of each :class:`BodyPart` (row = id). Saturated, pairwise distinct hues; a left part and its
#: right counterpart differ in hue, not only in brightness, so they survive JPEG and resizing.
PART_PALETTE: np.ndarray = np.array([
    (0, 0, 0),          # background
    (255, 220, 0),      # head
    (255, 140, 0),      # neck
    (70, 110, 255),     # torso
    (150, 60, 220),     # pelvis
    (255, 60, 60),      # left upper arm
    (0, 200, 120),      # right upper arm
    (255, 120, 170),    # left forearm
    (120, 240, 60),     # right forearm
    (200, 0, 90),       # left hand
    (0, 130, 60),       # right hand
    (0, 200, 255),      # left thigh
    (255, 180, 110),    # right thigh
    (0, 110, 170),      # left shin
    (190, 110, 40),     # right shin
    (160, 160, 255),    # left foot
    (120, 70, 30),      # right foot
], dtype=np.uint8)
PART_PALETTE.setflags(write=False)


def colour_parts(labels: np.ndarray) -> np.ndarray:
    """uint8 RGB image (..., 3) of a label map (...,) or (..., 1); unknown ids raise ``ValueError``."""
    lab = np.asarray(labels)
    if lab.ndim >= 1 and lab.shape[-1] == 1:
        lab = lab[..., 0]
    if lab.size and int(lab.max()) >= NUM_PARTS:
        raise ValueError(f"label {int(lab.max())} is not a BodyPart id (0..{NUM_PARTS - 1})")
    return PART_PALETTE[lab.astype(np.intp)]
