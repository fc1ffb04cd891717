"""Assemble a clip's dance: 8-count phrases of genre moves on the beat grid, dancer style, turns,
travel and level changes, eased transitions, then grounded SMPL-X rotations.

Layers (arms, torso, hands, legs/space, yaw, groove) each get their own keyframes and are summed on
top of the genre stance, so body-part emphasis is a per-layer gain (an arm-emphasis clip has large
arm keys and quiet legs) and energy scales every layer and the key density (half-time / double-time).
Easing decides fluidity: *sharp* moves travel late and land hard on the key ("hits"), *fluid* moves
flow through it; both slow down at the key, so accents fall on the beats.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from encoders.motion.grounding import ground
from encoders.motion.kinematics import forward_kinematics
from encoders.motion.rotations import axis_angle_to_matrix, quaternion_to_axis_angle, quaternion_to_matrix
from encoders.motion.skeleton import FOOT_JOINTS, smplx52

from .plan import CLIP_SECONDS, FPS, ClipSpec
from .primitives import MOVES, TRAVEL_DIRECTIONAL, Key, swap
from .rig import CONTROL_INDEX, HAND_SHAPES, NUM_CONTROLS, controls_to_quaternions
from .taxonomy import Genre, genre

ENERGY_GAIN = {"low": 0.6, "medium": 0.9, "high": 1.15}
ENERGY_STEP = {"low": 2.0, "medium": 1.0, "high": 0.5}     # key spacing (beats) of cyclic moves
MIN_KEY_SECONDS = 0.22                                     # no key spacing faster than this
if TYPE_CHECKING:
    from encoders.motion.record import MotionRecord

BASE_POSE = {"l_arm_up": -68.0, "r_arm_up": -68.0, "l_elbow": 14.0, "r_elbow": 14.0, "knee": 3.0}


@dataclass
class Dance:
    """A generated dance: stored arrays plus what was used (for tags)."""

    poses: np.ndarray            # (T, 52, 3) axis-angle float32
    trans: np.ndarray            # (T, 3) float32
    beat_times: np.ndarray       # (K,) seconds, the music's beat grid
    moves: dict[str, list[str]] = field(default_factory=dict)   # part -> move labels used (ordered by use)

    def record(self) -> "MotionRecord":
        """The dance as a :class:`encoders.motion.record.MotionRecord` (SMPL-X rotations through FK, 30 fps),
        as ingesting its npz would give it, without writing one (tests and benchmarks build dances in memory)."""
        from encoders.motion.convert import from_smplx_axis_angle

        return from_smplx_axis_angle(self.trans, self.poses, float(FPS))


def ease(u: np.ndarray, fluidity: str) -> np.ndarray:
    """Progress 0..1 inside one key interval; zero velocity at the start and the end of each interval.

    sharp: velocity ~ u^3 (1 - u): the limb waits, then snaps into the key (a hit on the beat);
    fluid: mostly smoothstep with a linear share, so the motion keeps flowing through the key.
    """
    u = np.clip(u, 0.0, 1.0)
    if fluidity == "sharp":
        return 5 * u ** 4 - 4 * u ** 5
    return 0.7 * (3 * u ** 2 - 2 * u ** 3) + 0.3 * u


def interpolate(keys: list[Key], beats: np.ndarray, fluidity: str) -> np.ndarray:
    """(T, C) control track through ``keys`` (beat time, pose) sampled at frame beat positions ``beats``."""
    if not keys:
        return np.zeros((len(beats), NUM_CONTROLS))
    by_time: dict[float, dict[str, float]] = {}
    for t, pose in keys:
        by_time[round(float(t), 4)] = pose
    times = np.array(sorted(by_time))
    vals = np.zeros((len(times), NUM_CONTROLS))
    for i, t in enumerate(times):
        for k, v in by_time[t].items():
            vals[i, CONTROL_INDEX[k]] += v
    if len(times) == 1:
        return np.repeat(vals, len(beats), axis=0)
    i = np.clip(np.searchsorted(times, beats, side="right") - 1, 0, len(times) - 2)
    u = (beats - times[i]) / (times[i + 1] - times[i])
    e = ease(u, fluidity)[:, None]
    return vals[i] + e * (vals[i + 1] - vals[i])


def _scale(pose: dict[str, float], gain: float) -> dict[str, float]:
    return {k: v * gain for k, v in pose.items()}


def _groove_keys(g: Genre, spec: ClipSpec, n_start: float, n_end: float, depth: float) -> list[Key]:
    keys: list[Key] = []
    b = np.floor(n_start)
    down, up = (1.0, 0.0) if g.groove_down_on_beat else (0.0, 1.0)
    while b <= n_end + 1:
        beat_in_bar = int(b) % g.meter
        if g.groove == "bounce":
            keys += [(b, {"squat": 9 * depth * down, "head_nod": 4 * depth}),
                     (b + 0.5, {"squat": 9 * depth * up, "head_nod": -2 * depth})]
        elif g.groove == "hit":
            keys += [(b, {"squat": 7 * depth, "chest_pop": 7 * depth}), (b + 0.5, {"squat": 1.0})]
        elif g.groove == "rise":
            if beat_in_bar == 0:
                keys.append((b, {"squat": 9 * depth, "knee": 4 * depth}))
            else:
                keys.append((b, {"ankle": 12 * depth * beat_in_bar / max(g.meter - 1, 1)}))
        elif g.groove == "sway":
            s = 1.0 if int(b) % 2 == 0 else -1.0
            keys.append((b, {"pelvis_side": 5 * depth * s, "spine_side": -4 * depth * s, "head_tilt": 3 * depth * s}))
        elif g.groove == "jack":
            keys += [(b, {"spine_fwd": 10 * depth, "squat": 8 * depth, "head_nod": 6 * depth}),
                     (b + 0.5, {"spine_fwd": -4 * depth, "chest_pop": 6 * depth})]
        b += 1.0
    return keys


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def choreograph(spec: ClipSpec) -> Dance:
    """Generate the dance of one planned clip (deterministic in ``spec.seed``)."""
    g = genre(spec.genre)
    rng = np.random.default_rng([*spec.seed, 1])
    st = spec.dancer
    spb = 60.0 / spec.bpm
    n_frames = int(round(CLIP_SECONDS * FPS))
    t = np.arange(n_frames) / FPS
    beats = (t - spec.t0 - st.timing_frames / FPS) / spb
    beat_times = spec.t0 + spb * np.arange(0, int((CLIP_SECONDS - spec.t0) / spb) + 1)

    step = ENERGY_STEP[spec.energy]
    while step * spb < MIN_KEY_SECONDS:
        step *= 2
    seg = 3 if g.meter == 3 else 4
    energy = ENERGY_GAIN[spec.energy] * st.amp
    gains = {"arms": 0.6, "torso": 0.6, "hands": 0.55, "legs": 0.7}
    gains[spec.emphasis] = 1.3 if spec.emphasis != "hands" else 1.1
    if spec.emphasis == "hands":
        gains["arms"] = 0.75

    layers: dict[str, list[Key]] = {"arms": [], "torso": [], "hands": [], "legs": [], "yaw": [], "groove": []}
    used: dict[str, list[str]] = {"arms": [], "torso": [], "hands": [], "legs": [], "travel": [], "turn": [], "level": []}
    arm_opts = g.arm_moves + (("hands_front",) if spec.emphasis == "hands" else ())
    start = -float(seg)
    end = float(np.ceil(beats[-1])) + seg
    yaw = 0.0
    heading = 0.0
    direction_flip = 1
    phrase = 0
    s0 = start
    while s0 < end:
        # an 8-count phrase = two segments; the second repeats the first move on the other side half the time
        lead = st.side if rng.random() < st.side_prob else -st.side
        picks = {"arms": _pick(rng, arm_opts), "torso": _pick(rng, g.torso_moves), "hands": _pick(rng, g.hand_moves)}
        leg_pick = _pick(rng, g.leg_moves)
        for half in range(2):
            side = lead if half == 0 or rng.random() < 0.5 else -lead
            if half == 1 and rng.random() < 0.3:
                picks["arms"] = _pick(rng, arm_opts)
            for part in ("arms", "torso", "hands"):
                mv = MOVES[picks[part]]
                keys = mv.fn(rng, seg, step)
                gain = gains[part] * energy
                for kt, pose in keys:
                    pose = pose if side > 0 else swap(pose)
                    layers[part].append((s0 + kt, _scale(pose, gain)))
                if s0 + seg > 0 and s0 < beats[-1]:
                    used[part].append(mv.label)
            # legs / space
            part, name = "legs", leg_pick
            if spec.spatial == "travelling" and (half == 0 or rng.random() < 0.7):
                part, name = "travel", _pick(rng, g.travel_moves)
            elif spec.spatial == "turning" and half == 0:
                part, name = "turn", _pick(rng, g.turn_moves)
            elif spec.spatial == "level_changes" and (half == 0 or rng.random() < 0.4):
                part, name = "level", _pick(rng, g.level_moves)
            mv = MOVES[name]
            if part == "travel" and name in TRAVEL_DIRECTIONAL:
                keys = mv.fn(rng, seg, step, direction="forward" if direction_flip > 0 else "back")
                direction_flip = -direction_flip
            else:
                keys = mv.fn(rng, seg, step)
            leg_gain = gains["legs"] * energy if part == "legs" else max(0.85, min(1.15, energy))
            if part == "travel":
                new_heading = float(rng.uniform(-50, 50))
                layers["yaw"] += [(s0, {"yaw": yaw + heading}), (s0 + 1.0, {"yaw": yaw + new_heading})]
                heading = new_heading
            move_yaw = 0.0
            for kt, pose in keys:
                pose = dict(pose if side > 0 else swap(pose))
                if "yaw" in pose:
                    move_yaw = pose.pop("yaw")
                    layers["yaw"].append((s0 + kt, {"yaw": yaw + heading + move_yaw}))
                layers["legs"].append((s0 + kt, _scale(pose, leg_gain)))
            yaw += move_yaw
            if part == "turn":
                layers["yaw"].append((s0 + seg, {"yaw": yaw + heading}))
            if s0 + seg > 0 and s0 < beats[-1]:
                used[part].append(mv.label)
            s0 += seg
        phrase += 1
    if spec.spatial != "travelling":
        layers["yaw"].append((start, {"yaw": 0.0}))
    layers["groove"] = _groove_keys(g, spec, start, end, st.groove_depth * min(1.3, energy) *
                                    (1.3 if spec.emphasis == "torso" else 0.9))

    ctrl = np.zeros((n_frames, NUM_CONTROLS))
    for name, keys in layers.items():
        fl = "fluid" if name == "yaw" and spec.fluidity == "sharp" else spec.fluidity
        ctrl += interpolate(keys, beats, fl)
    base = dict(BASE_POSE)
    for k, v in g.stance.items():
        base[k] = base.get(k, 0.0) + v
    base["spine_fwd"] = base.get("spine_fwd", 0.0) + st.posture
    base["l_arm_up"] += st.arm_bias
    base["r_arm_up"] += st.arm_bias
    if g.hand != "relaxed":
        base[f"l_{g.hand}"] = base.get(f"l_{g.hand}", 0.0) + 0.8
        base[f"r_{g.hand}"] = base.get(f"r_{g.hand}", 0.0) + 0.8
    for k, v in base.items():
        ctrl[:, CONTROL_INDEX[k]] += v
    _limit(ctrl)

    quat = controls_to_quaternions(ctrl)
    sk = smplx52()
    legs = sorted({j for n in FOOT_JOINTS for j in _chain(sk, n)})
    rot = np.zeros((n_frames, sk.num_joints, 3, 3))
    rot[:, legs] = quaternion_to_matrix(quat[:, legs])
    trans = ground(rot, sk)
    poses = quaternion_to_axis_angle(quat)
    moves = {k: list(dict.fromkeys(v)) for k, v in used.items() if v}
    return Dance(poses.astype(np.float32), trans.astype(np.float32), beat_times, moves)


def _chain(sk, name: str) -> list[int]:
    out, j = [], sk.index(name)
    while j >= 0:
        out.append(j)
        j = sk.parents[j]
    return out


def dance_positions(poses: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(T, 52, 3) global joint positions of stored poses (axis-angle) + trans: the reference FK."""
    rot = axis_angle_to_matrix(torch.as_tensor(np.asarray(poses, dtype=np.float64)))
    return forward_kinematics(rot, torch.as_tensor(np.asarray(trans, dtype=np.float64)), smplx52()).numpy()


def _limit(ctrl: np.ndarray) -> None:
    """Keep controls inside a human range (sums of layers can overshoot) and hand shapes normalised."""
    for side in ("l", "r"):
        idx = [CONTROL_INDEX[f"{side}_{s}"] for s in HAND_SHAPES]
        w = np.clip(ctrl[:, idx], 0.0, None)
        tot = w.sum(axis=1, keepdims=True)
        ctrl[:, idx] = np.where(tot > 1.1, w * 1.1 / np.maximum(tot, 1e-9), w)
        for name, lo, hi in (("elbow", 0, 145), ("arm_up", -80, 170), ("hip_flex", -40, 110),
                             ("wrist_flex", -70, 70)):
            j = CONTROL_INDEX[f"{side}_{name}"]
            ctrl[:, j] = np.clip(ctrl[:, j], lo, hi)
    ctrl[:, CONTROL_INDEX["squat"]] = np.clip(ctrl[:, CONTROL_INDEX["squat"]], -5, 62)

