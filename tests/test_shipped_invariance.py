"""The shipped model (models/demo) embeds the dance, not the rig, and reads people's words.

Tolerances are the ones stated in docs/results/real_data.md ("Invariance of the shipped model"):
under each realism perturbation alone the median cosine between a clip's embedding before and after
stays >= 0.9 and no clip drops below 0.5; the two skeleton conversions of CMU 05_20 embed at cosine
>= 0.9 and are each other's nearest clip.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from encoders.api import DanceEmbedder, DanceInput
from encoders.motion.augment import RealismAugment
from encoders.motion.convert import from_positions
from encoders.motion.skeleton import SMPL_BODY_22

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PERTURBATIONS = {
    "body proportions": RealismAugment(0.1, 0, 0, 0, 0, 0, 0),
    "rig bone angles": RealismAugment(0, 12, 0, 0, 0, 0, 0),
    "marker noise and jitter": RealismAugment(0, 0, 0.008, 0.015, 0, 0, 0),
    "low capture frame rate": RealismAugment(0, 0, 0, 0, 0, 1.0, 0),
}


@lru_cache(maxsize=1)
def embedder() -> DanceEmbedder:
    return DanceEmbedder.from_run()


@lru_cache(maxsize=1)
def clips() -> tuple:
    """Nine procedural dances of nine genres (SMPL-X rotations through FK), built in memory."""
    from generation.procedural.choreographer import choreograph
    from generation.procedural.plan import plan_corpus

    specs = plan_corpus(36, 0)[:18:2]
    return tuple(choreograph(s).record() for s in specs)


def test_shipped_model_reads_canonical_positions():
    mc = embedder().config.model
    assert mc.motion_input == "canonical" and mc.input_smoothing > 0


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_embeddings_survive_realism_perturbations(name):
    emb = embedder()
    records = clips()
    base = emb.encode_dances([DanceInput(r, None) for r in records])
    rng = np.random.default_rng(0)
    moved = []
    for r in records:
        body, _ = PERTURBATIONS[name].apply(r.body22(), 30.0, rng)
        moved.append(DanceInput(from_positions(body, SMPL_BODY_22, 30.0), None))
    cos = (emb.encode_dances(moved) * base).sum(axis=1)
    others = base @ base.T
    assert np.median(cos) >= 0.9 and cos.min() >= 0.5, (name, cos.round(3))
    assert np.median(cos) > np.median(others[~np.eye(len(records), dtype=bool)]) + 0.3


@pytest.mark.skipif(not (SHARED / "bvh" / "cmu_misc" / "05_20-mb.bvh").is_file(), reason="../shared/data is absent")
def test_two_skeleton_conversions_of_one_take_embed_alike():
    from encoders.motion.bvh import read_bvh

    emb = embedder()
    takes = [read_bvh(SHARED / "bvh" / "cmu_misc" / f"05_20-{rig}.bvh").to_record() for rig in ("daz", "mb")]
    others = list(clips())
    e = emb.encode_dances([DanceInput(r, None) for r in takes + others])
    same = float(e[0] @ e[1])
    assert same >= 0.9, same
    assert same > max(float(e[0] @ x) for x in e[2:]) and same > max(float(e[1] @ x) for x in e[2:])


def test_query_expansion_reaches_the_model():
    emb = embedder()
    plain, jargon = "a slow waltz in a ballroom", "toprock into windmills and a freeze"
    assert emb.expand_queries([plain])[0].text == plain
    expanded = emb.expand_queries([jargon])[0]
    assert expanded.text != jargon and "breaking" in expanded.text
    q = emb.encode_query([plain, jargon])
    t = emb.encode_text([plain, jargon])
    assert np.allclose(q[0], t[0]) and not np.allclose(q[1], t[1])
    assert np.allclose(emb.encode_query([jargon], expand=False), t[1:])
    off = DanceEmbedder(emb.model, emb.stats, emb.config, emb.model_id, query_expansion=False)
    assert np.allclose(off.encode_query([jargon]), t[1:]) and off.query_encoder_id != emb.query_encoder_id
