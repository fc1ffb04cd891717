"""Real-data sanity check on ../shared/data: CMU BVH dances, AIST++ joint slices and labelled music.

Why: the demo corpus is synthetic, so good demo metrics do not show the pipeline works on real
motion capture and real music. This module ingests the shared motion fixtures into a *separate*
workspace (never the user's), analyses the labelled recordings, and reports, honestly, whatever the
figures are:

1. Motion: every BVH clip (source ``cmu``) and every AIST++ joint slice (source ``aistpp-slices``) is
   embedded with a model run (no music: neither has any) in ONE gallery and ranked for genre queries.
   BVH labels come from the CMU database's own descriptions (:data:`BVH_LABELS`), written as ingest
   sidecars in a staging folder of symlinks (the shared folder is read-only); AIST++ labels from the
   genre code in the slice name (:data:`AISTPP_LABELS`), the slices being staged as position npz files
   (the generic ``ingest npz`` format) after :func:`encoders.motion.convert.from_positions` with
   ``up_axis='z'``. A slice without a genre code is embedded but left out of the genre figures. Real
   clips are short (5-s slices, the 4.93-s CMU 05_11), so ingest keeps sequences from
   :data:`REAL_MIN_SECONDS` on (``indexer.ingest.ingest(min_seconds=...)``) instead of half a clip; the
   model pads shorter inputs and masks the padding. Figures per query (:data:`GENRE_QUERIES`, two per
   genre): AUC (the probability that a random clip of the genre outscores a random other labelled clip;
   0.5 = chance), precision at n (n = number of clips of the genre), and the AUC among the clips of the
   genre's own source only (a genre that wins only against the other source may be telling sources
   apart, not genres); per genre, the mean over its queries.
2. Skeleton conversions: CMU 05_20 is shipped in two skeleton conventions ("daz" 43 joints, "mb" 31);
   the same clip should embed nearly identically. Figure: cosine of matching clips vs other clips.
3. Paired comparison (``baseline_run``): the same clips embedded by a second model; both columns and
   the differences (new - baseline) per query and per genre, and both models' skeleton figures.
4. Clip profiles (:func:`clip_profiles`): how much each clip moves and which genres the model takes it for, so
   a figure on one or two clips can be read (a 5-s slice that hardly moves carries no genre).
5. Music: tempo and a beat-accent meter estimate for recordings whose genre implies them
   (:data:`MUSIC_LABELS`: a waltz is in 3/4; ragtime, a csardas and the Sugar Plum Fairy in 2/4;
   drum & bass runs at 160-180 BPM, half-time 80-90 being the usual octave ambiguity).
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from encoders.atomic_io import atomic_write_json
from encoders.cliutil import info
from encoders.errors import DanceSearchError

if TYPE_CHECKING:
    from encoders.motion.record import MotionRecord

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# file-name prefix -> labels (CMU mocap subject descriptions: 05 "modern dance", 60/61 "salsa", 94 "indian dance")
BVH_LABELS: dict[str, dict[str, str]] = {
    "cmu_salsa/60_": {"genre": "salsa", "dancer": "cmu60"},
    "cmu_salsa/61_": {"genre": "salsa", "dancer": "cmu61"},
    "cmu_misc/05_": {"genre": "modern", "dancer": "cmu05"},
    "cmu_misc/94_": {"genre": "indian", "dancer": "cmu94"},
}
GENRE_QUERIES: dict[str, tuple[str, ...]] = {
    "salsa": ("salsa", "a couple dancing salsa with quick steps and turns"),
    "modern": ("modern dance", "a contemporary dancer with a pirouette and sideways steps"),
    "indian": ("indian dance", "a classical indian dance with expressive hand gestures"),
    "breaking": ("breakdance", "someone spinning on the floor on their back and hands, then freezing upside down"),
    "jazz": ("jazz dance", "a stylish jazzy routine with sharp kicks, hip rolls and arm poses"),
    "krump": ("krump", "an aggressive, energetic dance with stomps, chest pops and hard arm swings"),
    "hiphop": ("hip hop dance", "a dancer grooving and bouncing to the beat with loose, relaxed moves"),
}
# AIST++ genre code (the g?? of a sequence name) -> corpus genre (the names of generation/procedural/taxonomy.py).
# A slice whose name has no code listed here is embedded but unlabelled (left out of the genre figures).
AISTPP_LABELS: dict[str, str] = {"gBR": "breaking", "gJS": "jazz", "gKR": "krump", "gLH": "hiphop"}
AISTPP_SLICE_FPS = 30.0             # the joint CSVs: 30 fps, z-up, metres, SMPL 24-joint order
BVH_SOURCE = "cmu"
AISTPP_SOURCE = "aistpp-slices"
UNLABELLED = "unknown"              # the catalog's genre of a clip without a label
REAL_MIN_SECONDS = 4.0              # shortest real sequence evaluated (default ingest: half a clip, 6 s)
_SLICE_RE = re.compile(r"^(?:true_)?(?P<seq>g[A-Z]{2}_.+?)_slice(?P<slice>\d+)$")
MUSIC_LABELS: dict[str, dict[str, Any]] = {
    "sweetwaltz": {"genre": "waltz", "meter": 3},
    "pistachio": {"genre": "ragtime", "meter": 2},
    "brahms": {"genre": "csardas (Hungarian Dance 5)", "meter": 2},
    "nutcracker": {"genre": "ballet (Sugar Plum Fairy)", "meter": 2},
    "choice": {"genre": "drum and bass", "bpm_range": (160.0, 180.0)},
}


def default_shared_dir() -> Path:
    """``$DANCESEARCH_SHARED_DATA`` or ``../shared/data`` beside the project root."""
    return Path(os.environ.get("DANCESEARCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


# --- staging and ingest ---------------------------------------------------------------------------------
def label_for(rel: str) -> dict[str, str] | None:
    for prefix, labels in BVH_LABELS.items():
        if rel.startswith(prefix):
            return labels
    return None


def stage_bvh(shared: Path, staging: Path) -> list[dict[str, str]]:
    """Symlink each labelled BVH into ``staging`` with a sidecar JSON (genre, dancer, split test, group).

    Partners of one salsa take (60_k, 61_k) share a group so they never straddle splits; every file is
    put in the test split because this workspace is only ever evaluated.
    """
    bvh_root = shared / "bvh"
    staged = []
    for path in sorted(bvh_root.rglob("*")):
        if not path.is_file() or not path.name.lower().endswith((".bvh", ".bvh.gz")):
            continue
        rel = path.relative_to(bvh_root).as_posix()
        labels = label_for(rel)
        if labels is None:
            continue
        link = staging / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(path.resolve())
        stem = path.name[:-7] if path.name.lower().endswith(".bvh.gz") else path.name[:-4]
        take = stem.split("_")[1] if "_" in stem else stem
        sidecar = {"genre": labels["genre"], "dancer": labels["dancer"], "split": "test",
                   "group": f"{labels['genre']}-{take}"}
        atomic_write_json(staging / f"{stem}.json", sidecar)
        staged.append({"file": rel, **labels})
    return staged


def ingest_bvh(shared: Path, work: Path, progress: bool = True,
               min_seconds: float | None = REAL_MIN_SECONDS) -> dict[str, Any]:
    """Stage and ingest the BVH fixtures into the workspace at ``work`` (source ``cmu``)."""
    from indexer.ingest import ingest
    from indexer.workspace import Workspace

    staged = stage_bvh(shared, work / "staging" / "bvh")
    report = ingest(Workspace(work / "home"), "bvh", work / "staging" / "bvh", progress=progress, source=BVH_SOURCE,
                    min_seconds=min_seconds)
    return {"staged": staged, "sequences": report.sequences, "clips": report.clips, "failed": report.failed}


def aistpp_label_for(stem: str) -> dict[str, str] | None:
    """Labels of an AIST++ joint slice from its file stem (``true_gBR_sBM_cAll_d04_mBR0_ch02_slice0``).

    The sequence part is read by the AIST++ adapter's name parser; None when the name has no genre code of
    :data:`AISTPP_LABELS` (e.g. ``originalAist_groundTruthMatch_unknownseq``).
    """
    from indexer.sources.aistpp import parse_name

    m = _SLICE_RE.match(stem)
    parsed = parse_name(m.group("seq")) if m else None
    if m is None or parsed is None:
        return None
    genre = AISTPP_LABELS.get(f"g{parsed.genre_code}")
    if genre is None:
        return None
    return {"genre": genre, "dancer": f"aistpp-{parsed.dancer}", "sequence": m.group("seq")}


def _same_npz(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return set(z.files) == set(arrays) and all(np.array_equal(z[k], v) for k, v in arrays.items())
    except (OSError, ValueError, KeyError, EOFError):
        return False


def stage_aistpp(shared: Path, staging: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Each AIST++ joint slice as a position npz (``ingest npz`` format) in ``staging``; (staged, failed).

    The CSV (T rows x 24 SMPL joints xyz, z-up, 30 fps; joint names from
    ``skeleton/edge_smpl24_skeleton.json``) goes through :func:`encoders.motion.convert.from_positions`
    with ``up_axis='z'``, and the resulting y-up SMPL body positions are stored with their joint names, the
    frame rate and the labels (genre or none, dancer, split test, group = the AIST++ sequence, so slices of
    one sequence stay together). A file is rewritten only when its contents change (a re-run with the same
    ``--work`` then re-ingests nothing).
    """
    from encoders.atomic_io import atomic_save_npz
    from encoders.motion.convert import from_positions

    folder = shared / "aistpp_joint_slices"
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        return [], []
    skeleton = shared / "skeleton" / "edge_smpl24_skeleton.json"
    try:
        names = json.loads(skeleton.read_text(encoding="utf-8"))["names"]
    except (OSError, ValueError, KeyError) as exc:
        return [], [{"path": str(f), "reason": f"no joint order: cannot read {skeleton}: {exc}"} for f in files]
    staged: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for path in files:
        try:
            xyz = np.loadtxt(path, delimiter=",", ndmin=2)
            if xyz.shape[1] != 3 * len(names):
                raise DanceSearchError(f"expected {3 * len(names)} columns ({len(names)} joints xyz), got {xyz.shape[1]}")
            rec = from_positions(xyz.reshape(len(xyz), len(names), 3), names, AISTPP_SLICE_FPS, up_axis="z")
        except (OSError, ValueError, DanceSearchError) as exc:
            failed.append({"path": str(path), "reason": str(exc)})
            continue
        labels = aistpp_label_for(path.stem)
        meta: dict[str, Any] = {"split": "test", "group": f"aistpp-{labels['sequence'] if labels else path.stem}"}
        if labels is not None:
            meta.update(genre=labels["genre"], dancer=labels["dancer"])
        arrays = {"positions": rec.positions.astype(np.float32), "joint_names": np.array(rec.joint_names),
                  "fps": np.array(rec.fps, dtype=np.float64), "metadata": np.array(json.dumps(meta, sort_keys=True))}
        target = staging / f"{path.stem}.npz"
        if not _same_npz(target, arrays):
            atomic_save_npz(target, **arrays)
        staged.append({"file": f"aistpp_joint_slices/{path.name}", "genre": labels["genre"] if labels else UNLABELLED,
                       "frames": int(len(xyz)), "seconds": round(len(xyz) / AISTPP_SLICE_FPS, 3)})
    return staged, failed


def ingest_aistpp(shared: Path, work: Path, progress: bool = True,
                  min_seconds: float | None = REAL_MIN_SECONDS) -> dict[str, Any]:
    """Stage and ingest the AIST++ joint slices into the workspace at ``work`` (source ``aistpp-slices``)."""
    from indexer.ingest import ingest
    from indexer.workspace import Workspace

    staging = work / "staging" / "aistpp"
    staging.mkdir(parents=True, exist_ok=True)
    staged, failed = stage_aistpp(shared, staging)
    if not staged:
        return {"staged": [], "sequences": 0, "clips": 0, "failed": failed}
    report = ingest(Workspace(work / "home"), "npz", staging, progress=progress, source=AISTPP_SOURCE,
                    min_seconds=min_seconds)
    return {"staged": staged, "sequences": report.sequences, "clips": report.clips, "failed": failed + report.failed}


def ingest_real(shared: Path, work: Path, progress: bool = True,
                min_seconds: float | None = REAL_MIN_SECONDS) -> dict[str, Any]:
    """Both motion sources into one workspace; totals at the top, each source under its name."""
    parts = {"bvh": ingest_bvh(shared, work, progress, min_seconds),
             "aistpp": ingest_aistpp(shared, work, progress, min_seconds)}
    return {"min_seconds": min_seconds, **parts,
            "sequences": sum(p["sequences"] for p in parts.values()), "clips": sum(p["clips"] for p in parts.values()),
            "failed": [f for p in parts.values() for f in p["failed"]]}


# --- music ---------------------------------------------------------------------------------------------
def meter_scores(envelope: np.ndarray, beat_times: np.ndarray, fps: float = 30.0) -> dict[int, float]:
    """Autocorrelation of beat accents at lags 2, 3 and 4 beats (a bar-length periodicity detector).

    The accent of a beat is the onset-envelope maximum within +-2 frames of it; a meter of m beats
    shows as a stronger correlation at lag m. Empty dict when there are too few beats (< 16).
    """
    env = np.asarray(envelope, dtype=np.float64)
    frames = np.round(np.asarray(beat_times) * fps).astype(int)
    frames = frames[(frames >= 0) & (frames < env.size)]
    if frames.size < 16:
        return {}
    acc = np.array([env[max(0, f - 2):f + 3].max() for f in frames])
    acc = acc - acc.mean()
    denom = float(np.dot(acc, acc))
    if denom <= 0:
        return {}
    return {lag: float(np.dot(acc[:-lag], acc[lag:]) / denom * acc.size / (acc.size - lag)) for lag in (2, 3, 4)}


def estimated_meter(scores: dict[int, float]) -> int | None:
    """3 when the lag-3 correlation beats both duple lags, else 2 (duple); None without scores."""
    if not scores:
        return None
    return 3 if scores[3] > max(scores[2], scores[4]) else 2


def analyse_music(shared: Path, cache_dir: Path) -> list[dict[str, Any]]:
    """Tempo and meter of each labelled recording, with the verdict of each applicable check."""
    from encoders.music.features import COL_ENVELOPE, analyse_file

    index = json.loads((shared / "music" / "index.json").read_text(encoding="utf-8"))
    rows = []
    for short, labels in MUSIC_LABELS.items():
        entry = index.get(short)
        files = sorted((shared / "music").glob(f"{glob.escape(entry['path'])}.*")) if entry else []
        audio = next((f for f in files if f.suffix.lower() in (".ogg", ".wav", ".flac", ".mp3")), None)
        if audio is None:
            rows.append({"name": short, **_jsonable(labels), "error": "recording not found"})
            continue
        res = analyse_file(audio, cache_dir=cache_dir)
        scores = meter_scores(res.features[:, COL_ENVELOPE], res.beat_times)
        row: dict[str, Any] = {"name": short, "file": audio.name, **_jsonable(labels), "bpm": round(res.bpm, 1),
                               "duration_s": round(res.duration_s, 1), "beats": int(res.beat_times.size),
                               "meter_scores": {str(k): round(v, 3) for k, v in scores.items()},
                               "meter_estimate": estimated_meter(scores)}
        if "meter" in labels:
            row["meter_ok"] = row["meter_estimate"] == labels["meter"]
        if "bpm_range" in labels:
            lo, hi = labels["bpm_range"]
            row["tempo_ok"] = bool(lo <= res.bpm <= hi)
            row["tempo_octave_ok"] = bool(any(lo <= res.bpm * f <= hi for f in (0.5, 1.0, 2.0)))
        rows.append(row)
    return rows


def _jsonable(labels: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in labels.items()}


# --- motion embeddings -------------------------------------------------------------------------------
def auc(pos_scores: np.ndarray, neg_scores: np.ndarray) -> float:
    """P(random positive > random negative), ties counting one half (Mann-Whitney U / (n_pos n_neg))."""
    p = np.asarray(pos_scores, dtype=np.float64)[:, None]
    n = np.asarray(neg_scores, dtype=np.float64)[None, :]
    if p.size == 0 or n.size == 0:
        return float("nan")
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def genre_query_checks(scores: np.ndarray, genres: list[str], genre: str) -> dict[str, float]:
    """AUC and precision at n of one query's scores over clips labelled with ``genres``."""
    is_g = np.array([g == genre for g in genres])
    n = int(is_g.sum())
    order = np.argsort(-scores, kind="stable")
    return {"auc": auc(scores[is_g], scores[~is_g]), "clips_of_genre": n, "other_clips": int((~is_g).sum()),
            "precision_at_n": float(is_g[order[:n]].mean()) if n else float("nan"),
            "base_rate": float(is_g.mean())}


def load_gallery(home: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every clip of the workspace at ``home`` (key, source, genre, duration) and its motion record."""
    from encoders.motion.record import MotionRecord
    from indexer.workspace import Workspace

    ws = Workspace(home)
    catalog = ws.catalog(create=False)
    try:
        clips = catalog.clips()
        gallery = [{"key": c.key, "source": c.source, "genre": c.genre, "duration_s": round(float(c.duration_s), 3)}
                   for c in clips]
        paths = [ws.resolve(c.motion_path) for c in clips]
    finally:
        catalog.close()
    if not gallery:
        raise DanceSearchError(f"no clip was ingested into {home}")
    return gallery, [MotionRecord.load(p) for p in paths]


def _mean(values: list[float]) -> float:
    vals = [v for v in values if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def skeleton_conversion_checks(emb: np.ndarray, keys: list[str]) -> dict[str, Any]:
    """Cosine between the two conversions of each CMU 05_20 clip (daz vs mb) and to every other clip."""
    by_key = {k: i for i, k in enumerate(keys)}
    pairs = []
    for key, i in by_key.items():
        if "05_20-daz#" in key:
            j = by_key.get(key.replace("05_20-daz#", "05_20-mb#"))
            if j is not None:
                pairs.append((i, j))
    skel: dict[str, Any] = {"pairs": len(pairs)}
    if pairs:
        sims = emb @ emb.T
        match, others, nearest = [], [], 0
        for i, j in pairs:
            rest = np.ones(len(keys), dtype=bool)
            rest[[i, j]] = False
            match.append(float(sims[i, j]))
            others.extend(sims[i, rest].tolist())
            nearest += int(not rest.any() or sims[i, j] > sims[i, rest].max())
        skel.update({"mean_cosine_same_clip": float(np.mean(match)),
                     "mean_cosine_other_clips": float(np.mean(others)) if others else float("nan"),
                     "same_clip_is_nearest": nearest})
    return skel


def motion_checks(embedder: Any, emb: np.ndarray, gallery: list[dict[str, Any]]) -> dict[str, Any]:
    """Genre queries over the labelled clips of ``gallery`` (embedded as ``emb``) and the skeleton check.

    Unlabelled clips take part in the skeleton check's "other clips" only. Per query: AUC, P@n and the AUC
    among the labelled clips of the genre's own source(s); per genre: the means over its queries.
    """
    genres = [c["genre"] for c in gallery]
    sources = [c["source"] for c in gallery]
    lab = np.array([g != UNLABELLED for g in genres])
    lab_genres = [g for g, keep in zip(genres, lab) if keep]
    lab_sources = [s for s, keep in zip(sources, lab) if keep]
    queries: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for genre, texts in GENRE_QUERIES.items():
        if genre not in lab_genres:
            continue
        own = sorted({s for s, g in zip(lab_sources, lab_genres) if g == genre})
        same = np.array([s in own for s in lab_sources])
        same_genres = [g for g, keep in zip(lab_genres, same) if keep]
        rows = []
        for text, vec in zip(texts, embedder.encode_text(list(texts))):
            scores = (emb @ vec)[lab]
            row = {"query": text, "genre": genre, **genre_query_checks(scores, lab_genres, genre)}
            within = genre_query_checks(scores[same], same_genres, genre)
            row.update(auc_within_source=within["auc"], within_source_others=within["other_clips"])
            rows.append(row)
        queries += rows
        summary.append({"genre": genre, "sources": own, "clips": rows[0]["clips_of_genre"],
                        "other_clips": rows[0]["other_clips"], "within_source_others": rows[0]["within_source_others"],
                        "queries": len(rows), "mean_auc": _mean([r["auc"] for r in rows]),
                        "mean_precision_at_n": _mean([r["precision_at_n"] for r in rows]),
                        "mean_auc_within_source": _mean([r["auc_within_source"] for r in rows])})
    return {"model": embedder.model_id, "clips": len(gallery), "labelled_clips": int(lab.sum()),
            "unlabelled": [c["key"] for c in gallery if c["genre"] == UNLABELLED],
            "genre_counts": {g: genres.count(g) for g in sorted(set(genres))},
            "source_counts": {s: sources.count(s) for s in sorted(set(sources))},
            "queries": queries, "genres": summary,
            "mean_auc_over_genres": _mean([g["mean_auc"] for g in summary]),
            "skeleton_conversions": skeleton_conversion_checks(emb, [c["key"] for c in gallery])}


def clip_profiles(embedder: Any, emb: np.ndarray, gallery: list[dict[str, Any]], records: list[MotionRecord],
                  top: int = 3) -> list[dict[str, Any]]:
    """Per clip: how much it moves (``encoders.motion.kinematics.motion_activity``) and the genres whose names,
    as the corpus captions say them (``GenreVocabulary.caption_name``: "a krump dance"), the model scores
    highest for it.

    Why: a genre query's AUC on one or two clips says little by itself; the profile shows whether a clip moves
    at all and what the model takes it for (e.g. every clip that covers much ground read as "breaking")."""
    from encoders.motion.kinematics import motion_activity
    from encoders.text_vocabulary import GenreVocabulary

    vocabulary = GenreVocabulary.load()
    names = list(vocabulary.genres)
    scores = emb @ embedder.encode_text([vocabulary.caption_name([g]) for g in names]).T
    out = []
    for clip, record, row in zip(gallery, records, scores):
        best = np.argsort(-row, kind="stable")[:top]
        out.append({"key": clip["key"], "genre": clip["genre"], "source": clip["source"],
                    "seconds": clip["duration_s"], **motion_activity(record.body22(), record.fps),
                    "closest_genres": [[names[i], float(row[i])] for i in best]})
    return out


def embed_gallery(records: list[Any], run_dir: Path | None, device: str | None) -> tuple[Any, np.ndarray]:
    """The run's embedder and its (N, D) motion-only embeddings of ``records``."""
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder, DanceInput

    embedder = DanceEmbedder.from_run(run_dir or DEFAULT_RUN_DIR, device=device)
    return embedder, embedder.encode_dances([DanceInput(r, None) for r in records])


def embed_workspace(home: Path, run_dir: Path | None, device: str | None) -> dict[str, Any]:
    """:func:`motion_checks` of one run over every clip of the workspace at ``home``."""
    gallery, records = load_gallery(home)
    embedder, emb = embed_gallery(records, run_dir, device)
    return {**motion_checks(embedder, emb, gallery), "run": str(run_dir or "models/demo")}


def _diff(new: float, base: float) -> float:
    return float(new) - float(base)


SKELETON_FIGURES = ("mean_cosine_same_clip", "mean_cosine_other_clips", "same_clip_is_nearest")


def compare_runs(new: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Paired figures of two :func:`motion_checks` results on the same clips: new, baseline, new - baseline."""
    if new["clips"] != base["clips"]:
        raise DanceSearchError(f"the two runs saw different galleries ({new['clips']} vs {base['clips']} clips)")
    bq = {(q["genre"], q["query"]): q for q in base["queries"]}
    queries = []
    for q in new["queries"]:
        b = bq[(q["genre"], q["query"])]
        row: dict[str, Any] = {"query": q["query"], "genre": q["genre"], "clips_of_genre": q["clips_of_genre"],
                               "other_clips": q["other_clips"], "base_rate": q["base_rate"]}
        for k in ("auc", "precision_at_n", "auc_within_source"):
            row.update({f"{k}_new": q[k], f"{k}_baseline": b[k], f"{k}_diff": _diff(q[k], b[k])})
        queries.append(row)
    bg = {g["genre"]: g for g in base["genres"]}
    genres = []
    for g in new["genres"]:
        b = bg[g["genre"]]
        row = {"genre": g["genre"], "sources": g["sources"], "clips": g["clips"], "queries": g["queries"]}
        for k in ("mean_auc", "mean_precision_at_n", "mean_auc_within_source"):
            row.update({f"{k}_new": g[k], f"{k}_baseline": b[k], f"{k}_diff": _diff(g[k], b[k])})
        genres.append(row)
    skel: dict[str, Any] = {"pairs": new["skeleton_conversions"].get("pairs", 0)}
    for k in SKELETON_FIGURES:
        if k in new["skeleton_conversions"] and k in base["skeleton_conversions"]:
            a, b = new["skeleton_conversions"][k], base["skeleton_conversions"][k]
            skel[k] = {"new": a, "baseline": b, "diff": _diff(a, b)}
    return {"model_new": new["model"], "model_baseline": base["model"], "queries": queries, "genres": genres,
            "mean_auc_over_genres": {"new": new["mean_auc_over_genres"], "baseline": base["mean_auc_over_genres"],
                                     "diff": _diff(new["mean_auc_over_genres"], base["mean_auc_over_genres"])},
            "skeleton_conversions": skel}


def evaluate_motion(home: Path, run_dir: Path | None = None, device: str | None = None,
                    baseline_run: Path | None = None) -> dict[str, Any]:
    """``{"motion": checks of run_dir}``, plus ``baseline`` and ``comparison`` when ``baseline_run`` is given.

    Both models embed the very same clip records (loaded once), so the differences are paired.
    """
    gallery, records = load_gallery(home)
    embedder, emb = embed_gallery(records, run_dir, device)
    out: dict[str, Any] = {"motion": {**motion_checks(embedder, emb, gallery), "run": str(run_dir or "models/demo")},
                           "gallery": gallery, "profiles": clip_profiles(embedder, emb, gallery, records)}
    if baseline_run is not None:
        b_embedder, b_emb = embed_gallery(records, baseline_run, device)
        out["baseline"] = {**motion_checks(b_embedder, b_emb, gallery), "run": str(baseline_run)}
        out["comparison"] = compare_runs(out["motion"], out["baseline"])
    return out


def run_real_data(shared: Path, work: Path | None = None, run_dir: Path | None = None, device: str | None = None,
                  progress: bool = True, baseline_run: Path | None = None,
                  min_seconds: float | None = REAL_MIN_SECONDS) -> dict[str, Any]:
    """Ingest, analyse and embed; a temporary workspace is removed afterwards unless ``work`` is given."""
    tmp = None
    if work is None:
        tmp = Path(tempfile.mkdtemp(prefix="dancesearch-real-"))
        work = tmp
    try:
        info(f"ingesting the BVH and AIST++ fixtures of {shared} into {work / 'home'}")
        out: dict[str, Any] = {"shared": str(shared), "workspace": str(work / "home") if tmp is None else "(temporary)"}
        out["ingest"] = ingest_real(shared, work, progress, min_seconds)
        out["music"] = analyse_music(shared, work / "home" / "cache" / "features")
        out.update(evaluate_motion(work / "home", run_dir, device, baseline_run))
        return out
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _f(x: float) -> str:
    return "-" if x is None or np.isnan(x) else f"{x:.3f}"


def _d(x: float) -> str:
    return "-" if x is None or np.isnan(x) else f"{x:+.3f}"


def profile_lines(profiles: list[dict[str, Any]], model: str, group_from: int = 5) -> list[str]:
    """The report's clip-profile table: one row per clip, or one per genre for a genre of ``group_from`` clips
    or more (medians, and how often each genre is the model's closest)."""
    lines = ["## What each real clip is like", "",
             f"Joint speed: mean speed of the body joints relative to the root; root speed: the root's speed on the "
             f"ground (m/s). Closest genres: the genres whose caption name (\"a krump dance\", ...) model "
             f"`{model}` scores highest for the clip, with the cosine. A genre with {group_from} clips or more is "
             "one row: median seconds and speeds, and how often each genre is the closest.", "",
             "| clip | genre | s | joint speed | root speed | closest genres |", "|---|---|---:|---:|---:|---|"]
    by_genre: dict[str, list[dict[str, Any]]] = {}
    for p in profiles:
        by_genre.setdefault(p["genre"], []).append(p)
    for genre, rows in by_genre.items():
        if len(rows) >= group_from:
            counts = Counter(r["closest_genres"][0][0] for r in rows).most_common()
            lines.append(f"| {len(rows)} clips | {genre} | {np.median([r['seconds'] for r in rows]):.1f} | "
                         f"{np.median([r['joint_speed'] for r in rows]):.2f} | "
                         f"{np.median([r['root_speed'] for r in rows]):.2f} | closest first: "
                         + ", ".join(f"{g} {n}" for g, n in counts) + " |")
            continue
        for r in rows:
            lines.append(f"| {r['key']} | {genre} | {r['seconds']:.1f} | {r['joint_speed']:.2f} | "
                         f"{r['root_speed']:.2f} | "
                         + ", ".join(f"{g} {c:.2f}" for g, c in r["closest_genres"]) + " |")
    return lines


def real_data_markdown(result: dict[str, Any], command: str = "") -> str:
    """The report: ingest counts, genre query checks (paired with a baseline when there is one), skeleton
    consistency, clip profiles, music plausibility."""
    ing, mot = result["ingest"], result["motion"]
    base, cmp_ = result.get("baseline"), result.get("comparison")
    lines = ["# Real-data sanity check (../shared/data)", ""]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    parts = [f"{name} {ing[key]['sequences']} sequences -> {ing[key]['clips']} clips"
             for key, name in (("bvh", "CMU BVH"), ("aistpp", "AIST++ joint slices")) if key in ing]
    min_s = ing.get("min_seconds")
    counts = ", ".join(f"{g} {n}" for g, n in mot["genre_counts"].items() if g != UNLABELLED)
    n_unlab = len(mot.get("unlabelled", []))
    models = f"Model `{mot['model']}` (run `{mot.get('run', 'models/demo')}`)"
    if base is not None:
        models = (f"New model `{mot['model']}` (run `{mot.get('run', 'models/demo')}`) vs baseline "
                  f"`{base['model']}` (run `{base['run']}`), paired on the same clips")
    lines += [f"Ingested {ing['sequences']} sequences into {ing['clips']} clips ({len(ing['failed'])} failed) in a "
              "separate workspace" + (f": {'; '.join(parts)}" if parts else "") + ". "
              + (f"Sequences from {min_s:g} s on are kept (ingest `min_seconds`; the default minimum is half a "
                 "clip, 6 s), so the 5-s AIST++ slices and short CMU takes count; the model pads shorter inputs "
                 "and masks the padding. " if min_s is not None else "")
              + "Labels: CMU subject descriptions (eval/real_data.py `BVH_LABELS`) and AIST++ genre codes "
              "(`AISTPP_LABELS`). Clips per genre: " + counts
              + (f"; unlabelled {n_unlab} (embedded, left out of the genre figures)" if n_unlab else "") + ". "
              + models + ". Neither source has music, so clips are embedded motion-only.", ""]
    if ing["failed"]:
        lines += ["Failed files:", ""] + [f"- {f['path']}: {f['reason']}" for f in ing["failed"]] + [""]
    lines += ["AUC: probability that a clip of the genre outscores another labelled clip (0.5 = chance), all "
              "real clips in one gallery. P@n: share of the genre among the top n, n = its clip count (base rate "
              "= chance). Own-source AUC: the same among the clips of the genre's own source only (CMU or "
              "AIST++), i.e. genre against genre without the source difference to lean on.", ""]
    lines += ["## Per genre (mean over its queries)", ""]
    if cmp_ is None:
        lines += ["| genre | source | clips / other labelled | mean AUC | mean P@n | own-source AUC (others) |",
                  "|---|---|---|---:|---:|---:|"]
        for g in mot["genres"]:
            lines.append(f"| {g['genre']} | {', '.join(g['sources'])} | {g['clips']} / {g['other_clips']} | "
                         f"{_f(g['mean_auc'])} | {_f(g['mean_precision_at_n'])} | "
                         f"{_f(g['mean_auc_within_source'])} ({g['within_source_others']}) |")
        lines += ["", f"Mean AUC over genres: {_f(mot['mean_auc_over_genres'])}.", ""]
    else:
        lines += ["| genre | source | clips | AUC new | AUC baseline | ΔAUC | P@n new | P@n baseline | "
                  "own-source AUC new | own-source AUC baseline |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for g in cmp_["genres"]:
            lines.append(f"| {g['genre']} | {', '.join(g['sources'])} | {g['clips']} | {_f(g['mean_auc_new'])} | "
                         f"{_f(g['mean_auc_baseline'])} | {_d(g['mean_auc_diff'])} | "
                         f"{_f(g['mean_precision_at_n_new'])} | {_f(g['mean_precision_at_n_baseline'])} | "
                         f"{_f(g['mean_auc_within_source_new'])} | {_f(g['mean_auc_within_source_baseline'])} |")
        m = cmp_["mean_auc_over_genres"]
        lines += ["", f"Mean AUC over genres: new {_f(m['new'])}, baseline {_f(m['baseline'])}, "
                      f"difference {_d(m['diff'])}.", ""]
    lines += ["## Genre queries over all real clips", ""]
    if cmp_ is None:
        lines += ["| query | genre | clips of genre / others | AUC | P@n | base rate | own-source AUC |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for q in mot["queries"]:
            lines.append(f"| {q['query']} | {q['genre']} | {q['clips_of_genre']} / {q['other_clips']} | {_f(q['auc'])} | "
                         f"{_f(q['precision_at_n'])} | {_f(q['base_rate'])} | {_f(q['auc_within_source'])} |")
    else:
        lines += ["| query | genre | clips / others | AUC new | AUC baseline | ΔAUC | P@n new | P@n baseline | ΔP@n | "
                  "base rate |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for q in cmp_["queries"]:
            lines.append(f"| {q['query']} | {q['genre']} | {q['clips_of_genre']} / {q['other_clips']} | "
                         f"{_f(q['auc_new'])} | {_f(q['auc_baseline'])} | {_d(q['auc_diff'])} | "
                         f"{_f(q['precision_at_n_new'])} | {_f(q['precision_at_n_baseline'])} | "
                         f"{_d(q['precision_at_n_diff'])} | {_f(q['base_rate'])} |")
    sk = mot["skeleton_conversions"]
    lines += ["", "## Same take, two skeleton conventions (CMU 05_20 daz vs mb)", ""]
    if not sk.get("pairs"):
        lines.append("No matching clip pairs were ingested.")
    elif cmp_ is None:
        lines.append(f"{sk['pairs']} clip pairs: mean cosine {sk['mean_cosine_same_clip']:.3f} between the two "
                     f"conversions of a clip vs {sk['mean_cosine_other_clips']:.3f} to other clips; the other "
                     f"conversion is the nearest clip for {sk['same_clip_is_nearest']} of {sk['pairs']}.")
    else:
        bsk = base["skeleton_conversions"]
        lines += [f"{sk['pairs']} clip pairs. Same-take cosine: between the two conversions of a clip; other-clip "
                  "cosine: from a conversion to every other clip; nearest: pairs whose other conversion is the "
                  "nearest clip.", "",
                  "| model | same-take cosine | other-clip cosine | nearest |", "|---|---:|---:|---:|",
                  f"| new `{mot['model']}` | {sk['mean_cosine_same_clip']:.3f} | {sk['mean_cosine_other_clips']:.3f} | "
                  f"{sk['same_clip_is_nearest']} of {sk['pairs']} |",
                  f"| baseline `{base['model']}` | {bsk['mean_cosine_same_clip']:.3f} | "
                  f"{bsk['mean_cosine_other_clips']:.3f} | {bsk['same_clip_is_nearest']} of {bsk['pairs']} |",
                  f"| difference | {_d(sk['mean_cosine_same_clip'] - bsk['mean_cosine_same_clip'])} | "
                  f"{_d(sk['mean_cosine_other_clips'] - bsk['mean_cosine_other_clips'])} | "
                  f"{sk['same_clip_is_nearest'] - bsk['same_clip_is_nearest']:+d} |"]
    if result.get("profiles"):
        lines += [""] + profile_lines(result["profiles"], mot["model"])
    lines += ["", "## Music: tempo and meter of labelled recordings", "",
              "Meter estimate: autocorrelation of beat accents at lags of 2, 3, 4 beats (3 wins => triple).", "",
              "| recording | label | BPM | beats | lag 2 / 3 / 4 | meter est. | check |", "|---|---|---:|---:|---|---:|---|"]
    for m in result["music"]:
        if "error" in m:
            lines.append(f"| {m['name']} | {m['genre']} | - | - | - | - | {m['error']} |")
            continue
        sc = m["meter_scores"]
        checks = []
        if "meter" in m:
            checks.append(f"meter {m['meter']}: {'ok' if m['meter_ok'] else 'WRONG'}")
        if "bpm_range" in m:
            lo, hi = m["bpm_range"]
            checks.append(f"tempo {lo:.0f}-{hi:.0f}: " + ("ok" if m["tempo_ok"] else
                                                         "ok up to an octave" if m["tempo_octave_ok"] else "outside"))
        lags = " / ".join(f"{sc[k]:.2f}" for k in ("2", "3", "4")) if sc else "-"
        lines.append(f"| {m['name']} | {m['genre']} | {m['bpm']:.1f} | {m['beats']} | {lags} | "
                     f"{m['meter_estimate'] if m['meter_estimate'] else '-'} | {'; '.join(checks)} |")
    return "\n".join(lines) + "\n"
