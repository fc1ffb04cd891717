"""The embedded demo corpus: determinism, rhythm, grounding, tags vs captions, splits, formats.

One small corpus (24 clips, all 18 genres, every spatial pattern) is generated once per module and
checked from the files it wrote, the way `ingest npz` will read them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from encoders.motion.skeleton import FOOT_JOINTS, smplx52
from generation.metrics import beat_alignment_score, kinematic_beats
from generation.procedural import captions as cap
from generation.procedural.choreographer import choreograph, dance_positions
from generation.procedural.corpus import clip_tags, write_clip, write_demo_corpus
from generation.procedural.music import SR, synthesize
from generation.procedural.plan import plan_corpus
from generation.procedural.primitives import MOVES
from generation.procedural.taxonomy import GENRES, TEMPO_BOUNDS

N_CLIPS = 24
SEED = 11


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo_corpus(out, clips=N_CLIPS, seed=SEED, workers=2, progress=False)
    return out


def _load(path: Path) -> tuple[dict, dict]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays["metadata"]))


@pytest.fixture(scope="module")
def clips(corpus) -> list[dict]:
    """Every clip with its arrays, metadata and FK positions (from the stored float16 poses)."""
    out = []
    for p in sorted(corpus.glob("*.npz")):
        arrays, meta = _load(p)
        pos = dance_positions(arrays["poses"].astype(np.float64), arrays["trans"].astype(np.float64))
        out.append({"path": p, "arrays": arrays, "meta": meta, "pos": pos})
    return out


def _beats(meta: dict) -> np.ndarray:
    spb = 60.0 / meta["bpm"]
    return meta["first_beat_s"] + spb * np.arange(0, int((12.0 - meta["first_beat_s"]) / spb) + 1)


# ---------------------------------------------------------------- files and formats
def test_folder_layout_and_npz_format(corpus, clips):
    assert len(clips) == N_CLIPS
    for name in ("captions.jsonl", "manifest.json", "DATASHEET.md", "tempo_histogram.png"):
        assert (corpus / name).is_file(), name
    for c in clips:
        a, meta = c["arrays"], c["meta"]
        assert float(a["fps"]) == 30.0
        assert a["poses"].shape == (360, 52, 3) and a["poses"].dtype == np.float16
        assert a["trans"].shape == (360, 3) and a["trans"].dtype == np.float32
        assert np.isfinite(a["poses"].astype(np.float32)).all()
        assert str(a["audio"]) == c["path"].stem + ".ogg"
        assert {"genre", "dancer", "bpm", "split", "tags", "captions"} <= set(meta)
        assert meta["split"] in ("train", "val", "test") and len(meta["captions"]) >= 3


def test_npz_loads_through_the_ingest_adapter(corpus):
    npz_source = pytest.importorskip("indexer.sources.npz")
    adapter = npz_source.NpzAdapter(corpus)
    cands = adapter.candidates()
    assert len(cands) == N_CLIPS
    item = adapter.load(cands[0])
    _, meta = _load(cands[0])
    assert item.motion.num_frames == 360 and item.genre == meta["genre"] and item.split == meta["split"]
    assert item.audio is not None and Path(item.audio).is_file()
    assert sorted(item.captions) == sorted(meta["captions"])
    assert len(adapter.extra_captions()) == N_CLIPS


def test_captions_file_matches_npz_metadata(corpus, clips):
    lines = [json.loads(line) for line in (corpus / "captions.jsonl").read_text().splitlines() if line.strip()]
    by_clip = {d["clip"]: d for d in lines}
    for c in clips:
        d = by_clip[c["path"].stem + "#0"]
        assert d["captions"] == c["meta"]["captions"] and d["tags"] == c["meta"]["tags"]


def test_audio_is_ogg_at_22050_hz_or_more(corpus, clips):
    for c in clips[:6]:
        info = sf.info(str(corpus / str(c["arrays"]["audio"])))
        assert info.samplerate >= 22050 and info.channels == 1 and info.format == "OGG"
        assert 11.9 <= info.duration <= 12.1


# ---------------------------------------------------------------- determinism
def test_same_seed_same_arrays_and_metadata_independent_of_workers(corpus, tmp_path):
    specs = plan_corpus(N_CLIPS, SEED)
    for spec in specs[:4]:
        write_clip(spec, tmp_path)   # one process, vs the fixture's two workers
        a1, m1 = _load(corpus / f"{spec.name}.npz")
        a2, m2 = _load(tmp_path / f"{spec.name}.npz")
        assert m1 == m2
        for k in ("poses", "trans", "fps"):
            assert a1[k].tobytes() == a2[k].tobytes(), k


def test_other_seed_gives_other_clips():
    a = choreograph(plan_corpus(2, 1)[0])
    b = choreograph(plan_corpus(2, 2)[0])
    assert np.abs(a.poses - b.poses).mean() > 0.01


def test_no_duplicate_clips(clips):
    flat = np.stack([c["arrays"]["poses"].astype(np.float32).reshape(-1) for c in clips])
    for i in range(len(flat)):
        d = np.abs(flat[i + 1:] - flat[i]).mean(axis=1)
        assert (d > 0.02).all(), f"clip {i} nearly duplicates another (mean |diff| {d.min():.4f} rad)"


# ---------------------------------------------------------------- rhythm
def test_motion_accents_align_with_music_beats(clips):
    rng = np.random.default_rng(0)
    real, shifted, random = [], [], []
    for c in clips:
        kb = kinematic_beats(c["pos"], 30.0)
        beats = _beats(c["meta"])
        spb = 60.0 / c["meta"]["bpm"]
        real.append(beat_alignment_score(kb, beats))
        shifted.append(beat_alignment_score(kb, beats + spb / 4))
        random.append(beat_alignment_score(kb, np.sort(rng.uniform(0, 12, len(beats)))))
    assert np.mean(real) > 0.6
    assert np.mean(real) > np.mean(shifted) + 0.2
    assert np.mean(real) > np.mean(random) + 0.15


def test_beat_alignment_score_definition():
    assert beat_alignment_score([1.0, 2.0], [1.0, 2.0]) == pytest.approx(1.0)
    assert beat_alignment_score([1.0], [1.1], sigma=0.1) == pytest.approx(np.exp(-0.5))
    assert beat_alignment_score([], [1.0]) == 0.0
    t = np.arange(300) / 30.0
    pos = np.zeros((300, 1, 3))
    pos[:, 0, 0] = np.cos(2 * np.pi * t)                 # speed minima at every half second
    kb = kinematic_beats(pos, 30.0)
    assert np.allclose(kb[:3], [0.5, 1.0, 1.5], atol=1 / 30 + 1e-9)


def test_music_beats_are_where_the_grid_says(clips, corpus):
    hop = 256
    for c in clips[:6]:
        y, sr = sf.read(str(corpus / str(c["arrays"]["audio"])), dtype="float32")
        n = len(y) // hop
        rms = np.sqrt((y[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-8)
        env = np.maximum(np.diff(np.log(rms), prepend=np.log(rms[0])), 0.0)     # energy onsets
        frames = lambda ts: np.clip(np.round(np.asarray(ts) * sr / hop).astype(int), 0, n - 1)
        beats = _beats(c["meta"])
        on = np.mean([env[max(f - 1, 0):f + 3].max() for f in frames(beats)])
        off = np.mean([env[max(f - 1, 0):f + 3].max() for f in frames(beats + 60.0 / c["meta"]["bpm"] * 0.375)])
        assert on > 1.3 * off, c["path"].stem


def test_waltz_is_in_three_with_bar_accents():
    spec = next(s for s in plan_corpus(40, 3) if s.genre == "waltz")
    assert spec.meter == 3 and spec.rhythm == "triple"
    assert clip_tags(spec, choreograph(spec))["meter"] == "3/4"
    y = synthesize(spec).astype(np.float64)
    spb = 60.0 / spec.bpm
    beats = spec.t0 + spb * np.arange(int((12 - spec.t0) / spb))
    from scipy.signal import butter, sosfilt
    low = sosfilt(butter(4, 120, "low", fs=SR, output="sos"), y)
    energy = np.array([np.sum(low[int(b * SR):int((b + 0.08) * SR)] ** 2) for b in beats])
    down, other = energy[0::3], np.concatenate([energy[1::3], energy[2::3]])
    assert down.mean() > 2.0 * other.mean()


# ---------------------------------------------------------------- grounding
def test_feet_on_the_floor_every_frame(clips):
    sk = smplx52()
    feet = [sk.index(n) for n in FOOT_JOINTS]
    for c in clips:
        low = c["pos"][:, feet, 1].min(axis=1)
        assert np.abs(low).max() < 0.02, f"{c['path'].stem}: lowest foot {low.min():.3f}..{low.max():.3f} m"
        assert (c["pos"][:, :, 1] > -0.02).all(), "a joint below the floor"


def test_little_foot_sliding(clips):
    sk = smplx52()
    feet = [sk.index(n) for n in FOOT_JOINTS]
    speeds = []
    for c in clips:
        f = c["pos"][:, feet]
        low = np.argmin(f[:-1, :, 1], axis=1)
        v = np.linalg.norm(f[1:, :, [0, 2]] - f[:-1, :, [0, 2]], axis=-1) * 30.0
        speeds.append(v[np.arange(len(low)), low])
    s = np.concatenate(speeds)
    assert np.median(s) < 0.05, f"median contact-foot speed {np.median(s):.3f} m/s"
    assert np.percentile(s, 90) < 0.35


# ---------------------------------------------------------------- attributes are visible
def test_spatial_patterns_are_visible(clips):
    path = {}
    for c in clips:
        root = c["pos"][:, 0]
        walked = np.linalg.norm(np.diff(root[:, [0, 2]], axis=0), axis=1).sum()
        drop = np.percentile(root[:, 1], 95) - root[:, 1].min()
        aa = c["arrays"]["poses"][:, 0].astype(np.float64)
        from encoders.motion.rotations import axis_angle_to_matrix
        fwd = axis_angle_to_matrix(aa)[:, :, 2]                      # body forward (z axis) in the world
        yaw = np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))
        turned = np.degrees(np.abs(np.diff(yaw)).sum())
        path.setdefault(c["meta"]["tags"]["spatial"], []).append((walked, drop, turned))
    assert set(path) == {"in_place", "travelling", "turning", "level_changes"}
    arr = {k: np.array(v) for k, v in path.items()}
    assert arr["travelling"][:, 0].min() > 3.0
    assert arr["in_place"][:, 0].max() < arr["travelling"][:, 0].min()
    assert arr["turning"][:, 2].min() > 300
    assert arr["in_place"][:, 2].max() < 200
    assert arr["level_changes"][:, 1].min() > 0.2
    assert arr["in_place"][:, 1].max() < 0.2


def test_energy_and_emphasis_are_visible():
    from generation.metrics import joint_speed
    specs = [s for s in plan_corpus(180, 5) if s.spatial == "in_place"]
    sk = smplx52()
    arm = [sk.index(n) for n in ("left_wrist", "right_wrist", "left_elbow", "right_elbow")]
    leg = [sk.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    speed = {"low": [], "high": []}
    ratio = {"arms": [], "legs": []}
    for s in specs[:24]:
        d = choreograph(s)
        pos = dance_positions(d.poses, d.trans)
        rel = pos - pos[:, :1]
        if s.energy in speed:
            speed[s.energy].append(joint_speed(rel, 30).mean())
        if s.emphasis in ratio:
            ratio[s.emphasis].append(joint_speed(rel[:, arm], 30).mean() / joint_speed(rel[:, leg], 30).mean())
    assert np.mean(speed["high"]) > 1.3 * np.mean(speed["low"])
    assert np.mean(ratio["arms"]) > 1.5 * np.mean(ratio["legs"])


# ---------------------------------------------------------------- tags, captions, splits
def test_every_stated_attribute_is_in_the_tags(clips):
    labels = sorted({m.label for m in MOVES.values()}, key=len, reverse=True)
    n_checked = 0
    for c in clips:
        tags = c["meta"]["tags"]
        clip_moves = {m for part in cap.MOVE_PARTS for m in tags[part]}
        for text in c["meta"]["captions"]:
            for attr, values in cap.mentioned(text).items():
                assert values == {tags[attr]}, f"{text!r} states {attr}={values}, tags say {tags[attr]}"
                n_checked += 1
            rest = text
            for lab in labels:   # every movement name in a caption is one the clip performs
                if re.search(r"(?<![\w-])" + re.escape(lab) + r"(?![\w-])", rest):
                    assert lab in clip_moves, f"{text!r} names {lab!r}, not in {clip_moves}"
                    rest = rest.replace(lab, " ")
    assert n_checked > 2 * N_CLIPS


def test_captions_are_short_varied_and_not_only_genre(clips):
    texts = [t for c in clips for t in c["meta"]["captions"]]
    assert max(len(t.split()) for t in texts) <= 30
    assert len(set(texts)) == len(texts)
    no_genre = [t for t in texts if "genre" not in cap.mentioned(t)]
    assert 0.3 < len(no_genre) / len(texts) < 0.8
    multi = [t for t in texts if len(cap.mentioned(t)) >= 2]
    assert len(multi) / len(texts) > 0.4


def test_test_split_uses_held_out_templates():
    assert not set(cap.TRAIN_TEMPLATES) & set(cap.TEST_TEMPLATES)
    specs = plan_corpus(36, SEED)
    seen = {"train": set(), "test": set()}
    for s in specs:
        if s.split == "val":
            continue
        tags = clip_tags(s, choreograph(s))
        recs = cap.caption_records(tags, np.random.default_rng([*s.seed, 3]), held_out=s.split == "test")
        seen[s.split] |= {r[2] for r in recs}
        for text, stated, _ in recs:
            assert all(tags[a] == v for a, v in stated.items() if a not in ("genre", "move"))
    assert seen["test"] and seen["test"] <= set(cap.TEST_TEMPLATES)
    assert seen["train"] <= set(cap.TRAIN_TEMPLATES)


def test_at_least_16_genres_with_required_styles():
    names = {g.name for g in GENRES}
    assert len(names) >= 16
    assert {"popping", "locking", "hiphop", "breaking", "urban", "jazz", "kpop", "hantang", "dai", "miao", "shenyun",
            "ballet", "waltz", "krump", "house", "salsa"} <= names
    for g in GENRES:
        assert g.bpm[0] < g.bpm[1] and g.meter in (3, 4)
        for mv in g.arm_moves + g.leg_moves + g.torso_moves + g.hand_moves + g.travel_moves + g.turn_moves + g.level_moves:
            assert mv in MOVES, (g.name, mv)


def test_splits_are_genre_balanced_and_attributes_spread():
    specs = plan_corpus(1440, 0)
    by_genre: dict[str, list] = {}
    for s in specs:
        by_genre.setdefault(s.genre, []).append(s)
    assert len({len(v) for v in by_genre.values()}) == 1
    for g, ss in by_genre.items():
        n = len(ss)
        test = sum(s.split == "test" for s in ss) / n
        val = sum(s.split == "val" for s in ss) / n
        assert 0.08 <= test <= 0.12 and 0.08 <= val <= 0.12, g
        for attr in ("emphasis", "spatial", "energy"):
            counts = np.unique([getattr(s, attr) for s in ss], return_counts=True)[1]
            assert counts.min() >= 0.6 * counts.max(), (g, attr)
    assert len({s.tempo for s in specs}) == 3 and all(
        (s.bpm < TEMPO_BOUNDS[0]) == (s.tempo == "slow") for s in specs)


def test_only_split_writes_exactly_that_splits_clips_of_the_plan(corpus, tmp_path):
    """A held-out test set of a larger plan: the same clips the full plan would write, nothing else."""
    manifest = write_demo_corpus(tmp_path, clips=N_CLIPS, seed=SEED, workers=1, progress=False, only_split="test")
    expected = [s.name for s in plan_corpus(N_CLIPS, SEED) if s.split == "test"]
    assert manifest["clips"] == expected and manifest["counts"]["split"] == {"test": len(expected)}
    assert manifest["parameters"]["planned_clips"] == N_CLIPS
    assert sorted(p.stem for p in tmp_path.glob("*.npz")) == sorted(expected)
    a1, m1 = _load(corpus / f"{expected[0]}.npz")
    a2, m2 = _load(tmp_path / f"{expected[0]}.npz")
    assert m1 == m2 and a1["poses"].tobytes() == a2["poses"].tobytes()
    with pytest.raises(ValueError, match="only_split"):
        write_demo_corpus(tmp_path / "x", clips=N_CLIPS, seed=SEED, progress=False, only_split="holdout")
