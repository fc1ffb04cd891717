"""The 319-d per-frame layout of FineDance / GCDance / EDGE, with named slices.

Per frame at 30 fps::

    [0:4]     foot contacts   left ankle, right ankle, left toe, right toe (EDGE's joints 7, 8, 10, 11)
    [4:7]     root translation (metres, canonical frame)
    [7:139]   22 body joints x 6D local rotation (SMPL-X order 0-21: pelvis ... right_wrist)
    [139:229] left hand, 15 joints x 6D (SMPL-X 22-36)
    [229:319] right hand, 15 joints x 6D (SMPL-X 37-51)

The contact order is EDGE's and FineDance's 319-column files' (ankles first, then toes), so a
FineDance ``motion/*.npy`` with contacts lines up column for column. The 6D vector is the first two
ROWS of the rotation matrix (``encoders.motion.rotations``). Models split body and hand experts with
:data:`LAYOUT` (``LAYOUT.body_dims`` / ``LAYOUT.hand_dims``), never with literal numbers.
"""
from __future__ import annotations

import numpy as np

from encoders.motion.skeleton import FOOT_JOINTS, smplx52

REPRESENTATION_ID = "smplx52-rot6d-contacts-319"
"""Names this layout in saved normalisers and run directories; a run made for another layout is refused."""
FPS = 30.0
NUM_JOINTS = 52
NUM_BODY_JOINTS = 22
NUM_HAND_JOINTS = 30
ROT_DIM = 6
CONTACT_JOINTS: tuple[str, ...] = FOOT_JOINTS


class FeatureLayout:
    """Slices of the per-frame feature vector (class constants); ``dim`` is 319."""

    contacts = slice(0, 4)
    root = slice(4, 7)
    rotations = slice(7, 7 + NUM_JOINTS * ROT_DIM)
    body_rotations = slice(7, 7 + NUM_BODY_JOINTS * ROT_DIM)
    left_hand = slice(7 + NUM_BODY_JOINTS * ROT_DIM, 7 + (NUM_BODY_JOINTS + 15) * ROT_DIM)
    right_hand = slice(7 + (NUM_BODY_JOINTS + 15) * ROT_DIM, 7 + NUM_JOINTS * ROT_DIM)
    hand_rotations = slice(7 + NUM_BODY_JOINTS * ROT_DIM, 7 + NUM_JOINTS * ROT_DIM)

    @property
    def dim(self) -> int:
        return self.rotations.stop

    @property
    def body_dims(self) -> np.ndarray:
        """Indices a body expert owns: contacts, root and the 22 body joints (4 + 3 + 132 = 139)."""
        return np.arange(0, self.body_rotations.stop)

    @property
    def hand_dims(self) -> np.ndarray:
        """Indices a hand expert owns: the 30 finger joints (180)."""
        return np.arange(self.hand_rotations.start, self.hand_rotations.stop)

    def joint_rotation(self, joint: int | str) -> slice:
        """The 6 columns of one joint, by SMPL-X index or name."""
        j = smplx52().index(joint) if isinstance(joint, str) else int(joint)
        if not 0 <= j < NUM_JOINTS:
            raise IndexError(f"joint index {j} outside 0..{NUM_JOINTS - 1}")
        start = self.rotations.start + j * ROT_DIM
        return slice(start, start + ROT_DIM)


LAYOUT = FeatureLayout()
FEATURE_DIM = LAYOUT.dim
assert FEATURE_DIM == 319
