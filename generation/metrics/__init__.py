"""Generation metrics (issue 13): FID_k / FID_g / Div (Bailando features), BAS, PFC, PBC, foot skating, jerk.

Every metric reads :class:`generation.metrics.sample.DanceSample`. Modules, one job each:
``kinetic`` / ``geometric`` (the reference feature extractors, vectorised), ``fid`` (GT-normalised Fréchet
distance and diversity), ``beats`` (motion beats and BAS, all reference variants), ``protocols`` (the
conventions of Bailando / AIST++, LODGE / FineDance and the project's default), ``suite``
(:func:`evaluate_generation`), ``npz_io`` (folders of dances), ``cli`` (``dancesearch eval generation``).
docs/GENERATION_METRICS.md describes every convention.
"""
from .beats import (BAILANDO_BEATS, DEFAULT_SIGMA_S, LODGE_BEATS, POPDG_BEATS, BeatConfig, alignment_score,
                    beat_alignment_score, joint_speed, kinematic_beats, motion_beat_frames, sample_beat_alignment)
from .fid import diversity, frechet_distance, normalise_by_reference, score_feature_sets
from .geometric import geometric_features
from .kinetic import kinetic_features
from .protocols import PROTOCOLS, Protocol, get_protocol
from .sample import DanceSample
from .suite import evaluate_generation

__all__ = [
    "DanceSample", "DEFAULT_SIGMA_S", "beat_alignment_score", "joint_speed", "kinematic_beats",
    "BeatConfig", "BAILANDO_BEATS", "LODGE_BEATS", "POPDG_BEATS", "alignment_score", "motion_beat_frames",
    "sample_beat_alignment", "diversity", "frechet_distance", "normalise_by_reference", "score_feature_sets",
    "geometric_features", "kinetic_features", "PROTOCOLS", "Protocol", "get_protocol", "evaluate_generation",
]
