"""Training augmentation that makes clean procedural motion look like real motion capture.

Why: the shipped model is trained on a procedural corpus (exact SMPL-X bone lengths, no noise,
perfect loops) and meets CMU / AIST++ / users' BVH at search time. Real captures differ in ways
that say nothing about the dance, and the encoder should learn to ignore them:

- body proportions (a tall dancer, a short one; each capture's rig);
- skeleton-convention differences that survive retargeting: the same take on two rigs has limb
  bones pointing 5-20 degrees apart (the CMU 05_20 DAZ / MB forearms differ by 20 degrees);
- marker noise (white, millimetres) and soft-tissue / solver jitter (low-frequency, centimetres);
- frame-rate conversion (a 24 or 25 fps source resampled to 30 loses the fastest detail);
- small root drift of the capture volume's calibration;
- how far the dancer travels and how wide the steps are (a capture volume, a stage, a couple's floor): CMU
  salsa's root moves 1.04 m/s on the ground (median), the procedural salsa's 0.31. Measured on the shipped
  model (cd-620006e5f703e1e4), shrinking the ground-plane extent of the real CMU clips to 0.7x moved their
  similarity to "breaking dance" from 0.68 to 0.45 and to "salsa dance" from 0.28 to 0.38: the extent, not
  the dance, made them look like breaking. Training with it (``ground_scale_sigma`` 0.3) still lowered the
  real-data AUC at two seeds (docs/results/real_world_retrieval.md), so it is off by default;
- mirrored takes (the same choreography on the other side; the caption's "left" and "right"
  swap with it: :func:`mirror_caption`).

All of it acts on the 22 SMPL body-joint positions (metres, +y up) BEFORE the canonical
retargeting of :mod:`encoders.motion.canonical`, exactly where a real clip's differences enter.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from .canonical import LIMB_CHAINS, frames_from_axes, mirror_body
from .kinematics import resample_linear
from .skeleton import SMPL_BODY_22

_J = {name: i for i, name in enumerate(SMPL_BODY_22)}


@dataclass(frozen=True)
class RealismAugment:
    """Strengths of each perturbation; :meth:`apply` draws one random realisation per call."""

    proportion_sigma: float = 0.08      # log-normal sigma of per-bone length factors (left/right share one)
    bone_angle_deg: float = 12.0        # sigma of a fixed per-bone direction offset (convention differences)
    marker_noise_m: float = 0.008       # white noise per joint and frame
    jitter_m: float = 0.015             # low-frequency (about 1 Hz) per-joint wobble
    mirror_prob: float = 0.5
    low_fps_prob: float = 0.3           # share of clips passed through a 20-25 fps capture and back
    drift_m_per_s: float = 0.03         # sigma of a constant horizontal root drift
    ground_scale_sigma: float = 0.0     # log-normal sigma of a factor on ground-plane extent (0: off)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def apply(self, body: np.ndarray, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """(T, 22, 3) positions -> (perturbed positions, whether the take was mirrored)."""
        out = np.asarray(body, dtype=np.float64).copy()
        out = scale_bones(out, rng, self.proportion_sigma)
        out = offset_bone_directions(out, rng, self.bone_angle_deg)
        mirrored = bool(rng.random() < self.mirror_prob)
        if mirrored:
            out = mirror_body(out)
        t = len(out)
        if self.ground_scale_sigma > 0:
            out = scale_ground_extent(out, float(np.exp(rng.normal(0.0, self.ground_scale_sigma))))
        if self.drift_m_per_s > 0:
            drift = rng.normal(0.0, self.drift_m_per_s, size=2)
            secs = np.arange(t)[:, None] / fps
            out[:, :, 0] += (secs * drift[0])
            out[:, :, 2] += (secs * drift[1])
        if self.jitter_m > 0 and t > 1:
            out += low_frequency_noise(t, out.shape[1], fps, rng) * self.jitter_m
        if self.marker_noise_m > 0:
            out += rng.normal(0.0, self.marker_noise_m, size=out.shape)
        if self.low_fps_prob > 0 and rng.random() < self.low_fps_prob and t > 4:
            low = float(rng.choice([20.0, 24.0, 25.0]))
            coarse = resample_linear(out, fps, low)
            back = resample_linear(coarse, low, fps)
            n = min(t, len(back))
            out[:n] = back[:n]
        return out, mirrored


def scale_ground_extent(body: np.ndarray, factor: float) -> np.ndarray:
    """(T, J, 3) positions (+y up) stretched by ``factor`` on the ground plane (x, z) about the first frame's root.

    Travel and step widths scale together; heights do not. The map is the same at every frame, so a planted
    foot stays planted (its speed scales by ``factor``, and zero stays zero) and the timing is untouched;
    moving only the root's path instead would make planted feet slide. Bone lengths change with the
    stretch, which the canonical retargeting (``encoders.motion.canonical``) undoes; what stays is a small
    tilt of the bones towards or away from the vertical.
    """
    out = np.array(body, dtype=np.float64, copy=True)
    centre = out[0, 0, [0, 2]]
    out[:, :, [0, 2]] = centre + factor * (out[:, :, [0, 2]] - centre)
    return out


def low_frequency_noise(frames: int, joints: int, fps: float, rng: np.random.Generator,
                        knots_per_second: float = 1.0) -> np.ndarray:
    """(frames, joints, 3) unit-scale noise, smooth in time: random knots about once a second, linearly joined."""
    knots = max(2, int(np.ceil(frames / fps * knots_per_second)) + 1)
    values = rng.normal(0.0, 1.0, size=(knots, joints, 3))
    x = np.linspace(0.0, knots - 1, frames)
    lo = np.floor(x).astype(int).clip(0, knots - 2)
    w = (x - lo)[:, None, None]
    return (1 - w) * values[lo] + w * values[lo + 1]


def _rebuild_chain(body: np.ndarray, chain: tuple[str, ...], transform) -> None:
    """Re-place the joints of a chain from its first joint, bone by bone, with ``transform(bone_vectors, k)``."""
    idx = [_J[n] for n in chain]
    bones = np.diff(body[:, idx], axis=1)                         # (T, len-1, 3), from the unmodified chain
    for k in range(len(idx) - 1):
        body[:, idx[k + 1]] = body[:, idx[k]] + transform(bones[:, k], k)


def scale_bones(body: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Limb bones and the trunk (hips to shoulders) scaled by log-normal factors; left and right share one."""
    if sigma <= 0:
        return body
    out = body.copy()
    trunk = float(np.exp(rng.normal(0.0, sigma)))
    hip_mid = 0.5 * (out[:, _J["left_hip"]] + out[:, _J["right_hip"]])[:, None]
    upper = [_J[n] for n in SMPL_BODY_22 if n in ("spine1", "spine2", "spine3", "neck", "head", "left_collar",
                                                  "right_collar", "left_shoulder", "right_shoulder",
                                                  "left_elbow", "right_elbow", "left_wrist", "right_wrist")]
    out[:, upper] = hip_mid + (out[:, upper] - hip_mid) * trunk     # arms ride along; re-placed below
    factors = {}
    for chain in LIMB_CHAINS:
        side_free = tuple(n.split("_", 1)[1] for n in chain)
        if side_free not in factors:
            factors[side_free] = np.exp(rng.normal(0.0, sigma, size=len(chain) - 1))
        f = factors[side_free]
        _rebuild_chain(out, chain, lambda bone, k, f=f: bone * f[k])
    # a longer-legged dancer stands higher and covers more floor with the same steps: the whole body
    # follows the legs' mean factor (weighted by bone length), measured from the floor
    legs = np.linalg.norm(np.diff(body[:, [_J["left_hip"], _J["left_knee"], _J["left_ankle"]]], axis=1), axis=-1)
    thigh, shin = np.median(legs, axis=0)
    f = factors[("hip", "knee", "ankle", "foot")]
    leg_scale = float((f[0] * thigh + f[1] * shin) / max(thigh + shin, 1e-9))
    floor = float(body[:, [_J[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")], 1].min())
    anchor = hip_mid[:, 0].copy()
    anchor[:, 1] -= floor
    out += (anchor * (leg_scale - 1.0))[:, None]
    return out


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def offset_bone_directions(body: np.ndarray, rng: np.random.Generator, sigma_deg: float) -> np.ndarray:
    """Each limb bone turned by one fixed random rotation (angle ~ N(0, sigma)), as another rig would place it.

    The rotation is fixed in the dancer's own frame (hips' lateral axis, hips-to-shoulders up axis), not in
    the world: a rig's convention turns with the dancer."""
    if sigma_deg <= 0:
        return body
    out = body.copy()
    frame = frames_from_axes(body[:, _J["left_hip"]] - body[:, _J["right_hip"]],
                             0.5 * (body[:, _J["left_shoulder"]] + body[:, _J["right_shoulder"]]
                                    - body[:, _J["left_hip"]] - body[:, _J["right_hip"]]))      # (T, 3, 3)
    for chain in LIMB_CHAINS:
        rots = [_rotation(rng.normal(size=3), float(np.radians(rng.normal(0.0, sigma_deg))))
                for _ in range(len(chain) - 1)]
        # world bone -> body frame -> fixed rotation -> world: F R F^T b
        _rebuild_chain(out, chain, lambda bone, k, rots=rots: np.einsum(
            "tij,jk,tlk,tl->ti", frame, rots[k], frame, bone))
    return out


_SIDE_PAIRS = {"left": "right", "leftward": "rightward", "leftwards": "rightwards",
               "clockwise": "counterclockwise", "counter-clockwise": "clockwise", "anticlockwise": "clockwise",
               "anti-clockwise": "clockwise"}
_SIDE_SWAP = {**_SIDE_PAIRS, **{v: k for k, v in _SIDE_PAIRS.items() if k not in ("anticlockwise", "anti-clockwise")}}
_SIDE_WORDS = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, _SIDE_SWAP), key=len, reverse=True)) + r")(?![\w-])",
                         re.IGNORECASE)
_NOT_A_SIDE = re.compile(r"^\s+(after|away|now|then|on|there|here|back|before|into|at)\b", re.IGNORECASE)


def mirror_caption(text: str) -> str:
    """Swap the words for sides and turning senses (left / right, leftward, clockwise / counter-clockwise),
    keeping case, so a caption still describes the mirrored take; "right" meaning "just" ("right after",
    "right away") is left alone."""
    def swap(m: re.Match) -> str:
        word = m.group(0)
        if word.lower() == "right" and _NOT_A_SIDE.match(text[m.end():]):
            return word
        new = _SIDE_SWAP[word.lower()]
        if word.isupper():
            return new.upper()
        return new[0].upper() + new[1:] if word[0].isupper() else new

    return _SIDE_WORDS.sub(swap, text)
