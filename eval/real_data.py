"""Real-data sanity check on ../shared/data: CMU BVH dances and labelled music recordings.

Why: the demo corpus is synthetic, so good demo metrics do not show the pipeline works on real
motion capture and real music. This module ingests the shared BVH fixtures into a *separate*
workspace (never the user's), analyses the labelled recordings, and reports, honestly, whatever the
figures are:

1. Motion: every BVH clip is embedded with the demo model (no music: BVH has none) and ranked for
   genre queries. Labels come from the CMU database's own descriptions (:data:`BVH_LABELS`), written as
   ingest sidecars in a staging folder of symlinks (the shared folder is read-only). Figures: AUC (the
   probability that a random clip of the genre outscores a random other clip; 0.5 = chance) and
   precision at n (n = number of clips of the genre).
2. Skeleton conversions: CMU 05_20 is shipped in two skeleton conventions ("daz" 43 joints, "mb" 31);
   the same clip should embed nearly identically. Figure: cosine of matching clips vs other clips.
3. Music: tempo and a beat-accent meter estimate for recordings whose genre implies them
   (:data:`MUSIC_LABELS`: a waltz is in 3/4; ragtime, a csardas and the Sugar Plum Fairy in 2/4;
   drum & bass runs at 160-180 BPM, half-time 80-90 being the usual octave ambiguity).
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from encoders.atomic_io import atomic_write_json
from encoders.cliutil import info
from encoders.errors import DanceSearchError

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
}
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


def ingest_bvh(shared: Path, work: Path, progress: bool = True) -> dict[str, Any]:
    """Stage and ingest the BVH fixtures into the workspace at ``work`` (source ``cmu``)."""
    from indexer.ingest import ingest
    from indexer.workspace import Workspace

    staged = stage_bvh(shared, work / "staging" / "bvh")
    report = ingest(Workspace(work / "home"), "bvh", work / "staging" / "bvh", progress=progress, source="cmu")
    return {"staged": staged, "sequences": report.sequences, "clips": report.clips, "failed": report.failed}


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


def embed_workspace(home: Path, run_dir: Path | None, device: str | None) -> dict[str, Any]:
    from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder, DanceInput
    from encoders.motion.record import MotionRecord
    from indexer.workspace import Workspace

    ws = Workspace(home)
    catalog = ws.catalog(create=False)
    try:
        clips = catalog.clips()
    finally:
        catalog.close()
    if not clips:
        raise DanceSearchError(f"no clip was ingested into {home}")
    embedder = DanceEmbedder.from_run(run_dir or DEFAULT_RUN_DIR, device=device)
    emb = embedder.encode_dances([DanceInput(MotionRecord.load(ws.resolve(c.motion_path)), None) for c in clips])
    genres = [c.genre for c in clips]
    queries: list[dict[str, Any]] = []
    for genre, texts in GENRE_QUERIES.items():
        if genre not in genres:
            continue
        q = embedder.encode_text(list(texts))
        for text, vec in zip(texts, q):
            queries.append({"query": text, "genre": genre, **genre_query_checks(emb @ vec, genres, genre)})
    # the same take in two skeleton conventions (CMU 05_20 daz / mb)
    by_key = {c.key: i for i, c in enumerate(clips)}
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
            rest = np.ones(len(clips), dtype=bool)
            rest[[i, j]] = False
            match.append(float(sims[i, j]))
            others.extend(sims[i, rest].tolist())
            nearest += int(not rest.any() or sims[i, j] > sims[i, rest].max())
        skel.update({"mean_cosine_same_clip": float(np.mean(match)),
                     "mean_cosine_other_clips": float(np.mean(others)) if others else float("nan"),
                     "same_clip_is_nearest": nearest})
    return {"model": embedder.model_id, "clips": len(clips), "genre_counts": {g: genres.count(g) for g in sorted(set(genres))},
            "queries": queries, "skeleton_conversions": skel}


def run_real_data(shared: Path, work: Path | None = None, run_dir: Path | None = None, device: str | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Ingest, analyse and embed; a temporary workspace is removed afterwards unless ``work`` is given."""
    tmp = None
    if work is None:
        tmp = Path(tempfile.mkdtemp(prefix="dancesearch-real-"))
        work = tmp
    try:
        info(f"ingesting the BVH fixtures of {shared} into {work / 'home'}")
        out: dict[str, Any] = {"shared": str(shared), "workspace": str(work / "home") if tmp is None else "(temporary)"}
        out["ingest"] = ingest_bvh(shared, work, progress)
        out["music"] = analyse_music(shared, work / "home" / "cache" / "features")
        out["motion"] = embed_workspace(work / "home", run_dir, device)
        return out
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def real_data_markdown(result: dict[str, Any], command: str = "") -> str:
    """The report: ingest counts, genre query checks, skeleton consistency, music plausibility."""
    ing, mot = result["ingest"], result["motion"]
    lines = ["# Real-data sanity check (../shared/data)", ""]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    lines += [f"Ingested {ing['sequences']} BVH sequences into {ing['clips']} clips "
              f"({len(ing['failed'])} failed) in a separate workspace. Genre labels from the CMU subject "
              "descriptions (eval/real_data.py `BVH_LABELS`). Clips per genre: "
              + ", ".join(f"{g} {n}" for g, n in mot["genre_counts"].items()) + f". Model `{mot['model']}`; "
              "BVH has no music, so clips are embedded motion-only.", ""]
    if ing["failed"]:
        lines += ["Failed files:", ""] + [f"- {f['path']}: {f['reason']}" for f in ing["failed"]] + [""]
    lines += ["## Genre queries over all BVH clips", "",
              "AUC: probability that a clip of the genre outscores another clip (0.5 = chance). "
              "P@n: share of the genre among the top n, n = its clip count (base rate = chance).", "",
              "| query | genre | clips of genre / others | AUC | P@n | base rate |", "|---|---|---|---:|---:|---:|"]
    for q in mot["queries"]:
        lines.append(f"| {q['query']} | {q['genre']} | {q['clips_of_genre']} / {q['other_clips']} | {q['auc']:.3f} | "
                     f"{q['precision_at_n']:.3f} | {q['base_rate']:.3f} |")
    sk = mot["skeleton_conversions"]
    lines += ["", "## Same take, two skeleton conventions (CMU 05_20 daz vs mb)", ""]
    if sk.get("pairs"):
        lines.append(f"{sk['pairs']} clip pairs: mean cosine {sk['mean_cosine_same_clip']:.3f} between the two "
                     f"conversions of a clip vs {sk['mean_cosine_other_clips']:.3f} to other clips; the other "
                     f"conversion is the nearest clip for {sk['same_clip_is_nearest']} of {sk['pairs']}.")
    else:
        lines.append("No matching clip pairs were ingested.")
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
