"""Evaluation protocols: which joints, frame rate, truncation, normalisation and BAS variant a number is computed with.

Why protocols: the same FID_k / FID_g / Div / BAS code gives incomparable numbers under different glue
(frame rate fed to hard-coded time steps, joints, root handling, truncation, beat direction). A
:class:`Protocol` bundles that glue so a number can be reported with the protocol it belongs to:

- ``bailando-aist``: ``lisiyao21/Bailando utils/metrics_new.py`` (``calc_and_save_feats``) and
  ``utils/beat_align_score.py``, the "AIST++ protocol" of Bailando, EDGE, LODGE's AIST++ table.
- ``lodge-finedance``: ``li-ronghui/LODGE metric/metrics_finedance.py`` and ``metric/beat_align_score.py``,
  the FineDance protocol (the FineDance repository has no metric code), plus hand FID / Div, for which
  no public reference exists (see :data:`HAND_NOTE`).
- ``dancesearch``: the project's own default (true time steps at 30 fps, true acceleration, BAS in seconds).

docs/GENERATION_METRICS.md lists every convention and where the project's default deviates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from encoders.errors import InputError
from encoders.motion.kinematics import resample_linear
from encoders.motion.skeleton import SMPL_BODY_22, smpl24, smplx52

from .beats import BAILANDO_BEATS, LODGE_BEATS, BeatConfig, sample_beat_alignment
from .geometric import REFERENCE_TIME_PER_FRAME, geometric_features
from .kinetic import REFERENCE_FRAME_TIME, kinetic_features
from .sample import DanceSample

SMPL_24: tuple[str, ...] = smpl24().names
"""The 24 SMPL joints: 22 body + ``left_palm`` / ``right_palm`` (SMPL 22 / 23, the reference's lhand / rhand)."""

PALM_STAND_INS: dict[str, str] = {"left_palm": "left_middle1", "right_palm": "right_middle1"}
"""SMPL-X records have no SMPL palm joint; its stand-in is the base of the middle finger (SMPL's hand joint
sits at the knuckles, about 9 cm from the wrist, as SMPL-X's ``*_middle1``). Only ``y_min`` of the geometric
features, the kinetic features of joints 22 / 23 and the BAS speed average read these two joints."""

FINGER_JOINTS: tuple[str, ...] = smplx52().names[22:]
"""The 30 SMPL-X finger joints (15 left, then 15 right), FineDance's hand joints."""

HAND_NOTE = ("hand FID / Div have no public reference implementation (FineDance and GCDance report them, "
             "LODGE's metric code scores the 22 body joints only); here: kinetic features, with the protocol's "
             "kinetic settings, of the 30 finger joints expressed relative to their wrist")

LODGE_BEAT_JOINTS: tuple[str, ...] = SMPL_BODY_22 + ("jaw", "left_eye")
"""LODGE's BAS averages the speed of SMPL-X joints 0-23 (its forward kinematics output sliced ``[:, :24]``):
the 22 body joints, the jaw and the left eye. The project's skeletons have no jaw / eye joints; when a
sample lacks them the head joint stands in for both (they move rigidly with the head)."""

MIN_FRAMES = 3
"""Frames (after resampling and truncation) the kinetic features need: a window of two differences."""


@dataclass(frozen=True)
class Protocol:
    """How one protocol turns a :class:`DanceSample` into features and a BAS (see docs/GENERATION_METRICS.md).

    ``fps``: motion is linearly resampled to this rate first. ``joints`` (+ ``stand_ins``): the joints fed to
    the features, in order. ``max_frames``: truncation before the features (at ``fps``). ``subtract_first_root``:
    subtract joint 0 of frame 0 from every joint. ``root_relative``: then express joints 1.. relative to joint 0
    in each frame (LODGE). ``kinetic_frame_time`` / ``geometric_time_per_frame``: the time steps of the
    extractors (None: 1 / fps). ``kinetic_true_acceleration``: fix the energy-expenditure quirk.
    ``hands``: also score the fingers when every sample of both sets has them. ``beats``: the BAS variant;
    ``beat_joints``: joints of the BAS speed curve (None: ``joints``). ``skating_mode``: the foot-skating
    variant of :mod:`generation.metrics.skating` (``project`` or ``lodge``). ``drop_constant_gt_dims``: a
    std below which a feature dimension of the GT set counts as constant and is left out of FID / Div
    (None: kept, as the references do; see :func:`generation.metrics.fid.score_feature_sets`).
    """

    name: str
    title: str
    fps: float
    joints: tuple[str, ...]
    stand_ins: dict[str, str] = field(default_factory=dict)
    max_frames: int | None = None
    subtract_first_root: bool = True
    root_relative: bool = False
    kinetic_frame_time: float | None = REFERENCE_FRAME_TIME
    kinetic_true_acceleration: bool = False
    geometric_time_per_frame: float | None = REFERENCE_TIME_PER_FRAME
    normalise: bool = True
    drop_constant_gt_dims: float | None = None
    hands: bool = False
    beats: BeatConfig = BAILANDO_BEATS
    beat_joints: tuple[str, ...] | None = None
    skating_mode: str = "project"
    references: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    # -- settings ---------------------------------------------------------------------------------------
    @property
    def frame_time(self) -> float:
        return self.kinetic_frame_time if self.kinetic_frame_time is not None else 1.0 / self.fps

    @property
    def time_per_frame(self) -> float:
        return self.geometric_time_per_frame if self.geometric_time_per_frame is not None else 1.0 / self.fps

    def settings(self) -> dict:
        """The protocol's conventions as plain JSON values (for reports)."""
        return {
            "name": self.name, "title": self.title, "fps": self.fps, "joints": len(self.joints),
            "joint_names": list(self.joints), "stand_ins": dict(self.stand_ins), "max_frames": self.max_frames,
            "subtract_first_root": self.subtract_first_root, "root_relative": self.root_relative,
            "kinetic_frame_time": self.frame_time, "kinetic_true_acceleration": self.kinetic_true_acceleration,
            "geometric_time_per_frame": self.time_per_frame, "normalise_by_gt": self.normalise,
            "drop_constant_gt_dims": self.drop_constant_gt_dims,
            "hands": self.hands, "beats": self.beats.as_dict(),
            "beat_joints": len(self.beat_joints or self.joints), "skating_mode": self.skating_mode,
            "references": list(self.references),
            "notes": list(self.notes),
        }

    # -- per-sample steps ---------------------------------------------------------------------------------
    def resampled(self, sample: DanceSample) -> DanceSample:
        """The sample at the protocol's frame rate (linear interpolation, ``encoders.motion.kinematics``)."""
        if abs(sample.fps - self.fps) < 1e-9:
            return sample
        return sample.with_positions(resample_linear(sample.positions, sample.fps, self.fps), fps=self.fps)

    def check(self, sample: DanceSample, role: str) -> None:
        """Raise an error naming the sample (and its set) when it lacks the protocol's joints or frames."""
        needed = list(self.joints) + list(self.beat_joints or ())
        have = set(sample.joint_names)
        missing = [n for n in dict.fromkeys(needed) if n not in have and self.stand_ins.get(n) not in have]
        if missing:
            raise InputError(sample.name, f"{role} sample lacks joints the '{self.name}' protocol needs",
                             field="joint_names", expected=f"{len(self.joints)} joints ({self.joints[0]} ... "
                                                           f"{self.joints[-1]})",
                             got=f"{len(sample.joint_names)} joints, missing {missing[:6]}")
        frames = self.feature_frames(sample)
        if frames < MIN_FRAMES:
            raise InputError(sample.name, f"too few frames in {role} sample for the '{self.name}' protocol",
                             field="positions", expected=f">= {MIN_FRAMES} frames at {self.fps:g} fps",
                             got=f"{sample.num_frames} frames at {sample.fps:g} fps -> {frames}")

    def feature_frames(self, sample: DanceSample) -> int:
        """Frames the feature extractors will see (after resampling and truncation)."""
        n = sample.num_frames
        if abs(sample.fps - self.fps) >= 1e-9 and n >= 2:
            n = int(np.floor((n - 1) / sample.fps * self.fps + 1e-6)) + 1
        return n if self.max_frames is None else min(n, self.max_frames)

    def feature_positions(self, sample: DanceSample) -> np.ndarray:
        """(T, len(joints), 3) positions the body extractors read: resampled, truncated, root-handled."""
        s = self.resampled(sample)
        pos = s.joints_with_stand_ins(self.joints, self.stand_ins)
        if self.max_frames is not None:
            pos = pos[: self.max_frames]
        pos = pos.copy()
        if self.subtract_first_root:
            pos = pos - pos[:1, :1, :]
        if self.root_relative:
            pos[:, 1:] = pos[:, 1:] - pos[:, :1]
        return pos

    def hand_positions(self, sample: DanceSample) -> np.ndarray:
        """(T, 30, 3) finger joints relative to their wrist, resampled and truncated like the body."""
        s = self.resampled(sample)
        fingers = s.joints(FINGER_JOINTS)
        wrists = s.joints(("left_wrist", "right_wrist"))
        rel = fingers - np.repeat(wrists, 15, axis=1)
        return rel if self.max_frames is None else rel[: self.max_frames]

    def kinetic(self, positions: np.ndarray) -> np.ndarray:
        return kinetic_features(positions, frame_time=self.frame_time,
                                true_acceleration=self.kinetic_true_acceleration)

    def geometric(self, positions: np.ndarray) -> np.ndarray:
        return geometric_features(positions, self.joints, time_per_frame=self.time_per_frame)

    def features(self, sample: DanceSample, hands: bool = False) -> dict[str, np.ndarray]:
        """``kinetic`` (3 J,), ``geometric`` (32,) and, with ``hands``, ``hand`` (90,) features of one sample."""
        pos = self.feature_positions(sample)
        out = {"kinetic": self.kinetic(pos), "geometric": self.geometric(pos)}
        if hands:
            out["hand"] = self.kinetic(self.hand_positions(sample))
        return out

    def beat_alignment(self, sample: DanceSample) -> float | None:
        """BAS of one sample (None without music beats): the whole motion at the protocol's frame rate."""
        if sample.music_beats is None:
            return None
        s = self.resampled(sample)
        pos = s.joints_with_stand_ins(self.beat_joints or self.joints, self.stand_ins)
        return sample_beat_alignment(pos, s.fps, sample.music_beats, self.beats)


BAILANDO_AIST = Protocol(
    name="bailando-aist",
    title="Bailando / AIST++ protocol",
    fps=60.0,
    joints=SMPL_24,
    stand_ins=PALM_STAND_INS,
    max_frames=1200,
    references=("lisiyao21/Bailando utils/metrics_new.py", "lisiyao21/Bailando utils/features/kinetic.py",
                "lisiyao21/Bailando utils/features/manual_new.py", "lisiyao21/Bailando utils/beat_align_score.py"),
    notes=("motion resampled to 60 fps (AIST++'s rate; Bailando's music features and beat one-hot are at 60 fps)",
           "kinetic frame_time 1/60 s and geometric velocity step 1/120 s, hard-coded as in the reference",
           "first 1200 frames (20 s at 60 fps) for FID / Div, the whole motion for BAS, as in the reference",
           "BAS: music direction, sigma 3 frames = 50 ms at 60 fps, music beats rounded to 60-fps frames"),
)

LODGE_FINEDANCE = Protocol(
    name="lodge-finedance",
    title="LODGE / FineDance protocol",
    fps=30.0,
    joints=SMPL_BODY_22,
    stand_ins={"jaw": "head", "left_eye": "head"},
    max_frames=1024,
    root_relative=True,
    hands=True,
    beats=LODGE_BEATS,
    beat_joints=LODGE_BEAT_JOINTS,
    skating_mode="lodge",
    references=("li-ronghui/LODGE metric/metrics_finedance.py", "li-ronghui/LODGE metric/beat_align_score.py",
                "li-ronghui/LODGE metric/features/"),
    notes=("30-fps motion fed to the 60-fps extractors (frame_time 1/60, velocity step 1/120) as LODGE does",
           "22 body joints; frame-0 root subtracted, then joints 1-21 relative to the root in every frame",
           "first 1024 frames for FID / Div, the whole motion for BAS",
           "BAS: music direction, sigma 3 frames = 0.1 s at 30 fps, smoothing 5 frames; music beats after the "
           "motion's end are kept (LODGE slices the (y, sr) tuple instead of the audio)",
           "BAS speed over LODGE's SMPL-X joints 0-23: 22 body joints + jaw + left eye; the head joint stands in "
           "for the jaw and the eye when a sample has no such joints (the project's skeletons have none)",
           HAND_NOTE),
)

DANCESEARCH = Protocol(
    name="dancesearch",
    title="DanceSearch default protocol",
    fps=30.0,
    joints=SMPL_BODY_22,
    max_frames=None,
    kinetic_frame_time=None,
    kinetic_true_acceleration=True,
    geometric_time_per_frame=None,
    drop_constant_gt_dims=1e-6,
    hands=True,
    beats=BeatConfig(direction="music", unit="seconds", sigma=0.1, smoothing=1.0 / 6.0,
                     quantise_music_beats=False, drop_music_beats_after_motion=True),
    references=("lisiyao21/Bailando utils/features/", "li-ronghui/LODGE metric/"),
    notes=("the project's motion rate (30 fps) with the true time steps: kinetic frame_time and geometric "
           "velocity step 1/30 s, so velocities and thresholds are in real m/s",
           "energy expenditure uses the true acceleration (the reference divides only the previous position by "
           "the time step, making 22 of 66 features depend on absolute position)",
           "22 SMPL body joints (every record the project reads has them), frame-0 root subtracted, no truncation",
           "feature dimensions constant in the GT set (std < 1e-6) are left out of FID / Div: the reference "
           "divides them by 1e-10, so a prediction tripping a geometric test the GT set never trips (a hand near "
           "the floor; the spine-stretch test on non-rigid bones) adds ~1e15 to FID_g",
           "BAS: music direction, sigma 0.1 s and speed smoothing 1/6 s (LODGE's 3 and 5 frames at 30 fps), beat "
           "times not rounded to frames, music beats after the motion's end ignored",
           HAND_NOTE),
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (BAILANDO_AIST, LODGE_FINEDANCE, DANCESEARCH)}
DEFAULT_PROTOCOL = "dancesearch"


def get_protocol(name: str | Protocol) -> Protocol:
    """The registered protocol of that name (or the protocol itself)."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise InputError(None, f"unknown generation-metrics protocol {name!r}", field="protocol",
                         expected=" | ".join(PROTOCOLS), got=repr(name)) from None


def register_protocol(protocol: Protocol) -> None:
    """Add a protocol to the registry (e.g. a variant for an ablation)."""
    PROTOCOLS[protocol.name] = protocol
