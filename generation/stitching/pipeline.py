"""``GCRMPipeline``: music (+ genre, optional text) -> long dances stitched from 4-s candidates (FineNet GCRM).

Borrowed interface: diffusers' pipelines (``from_pretrained``, ``__call__``). Steps:

1. cut the music into consecutive 4-s segments (the last one padded by repeating the final frame and
   trimmed after stitching);
2. candidates per segment: ``candidates`` diffusion samples (seeds ``seed .. seed + candidates - 1``) and,
   with a catalog, ``catalog_candidates`` windows retrieved by the text and the music (train split);
3. GS (eq. 3) of every candidate with its segment's log-mel, pose descriptors of each candidate's first and
   last kept frames;
4. eq. 5-6 greedily (``gcrm.select_many``: ``dances`` dances from different first choices);
5. each dance placed segment after segment in one world frame, with the 5-frame cut and linear
   interpolation at every junction (``junction``), decoded to a ``MotionRecord``.

``progress(fraction, message)`` is called as work completes and ``cancelled()`` is polled between units of
work (each DDIM step of the one batched diffusion run, retrieval, scoring, each dance): when it returns True the call raises
``GenerationCancelled``, so an API job runner can report and stop a job.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from encoders.errors import DanceSearchError, InputError
from encoders.motion.record import MotionRecord

from ..representation.codec import decode
from ..representation.layout import FPS
from .candidates import Candidate, CatalogCandidates, DiffusionCandidates
from .gcrm import ALPHA, BETA, Selection, select_many
from .junction import CUT, join, place_after, pose_descriptor

SEGMENT_FRAMES = 120


class GenerationCancelled(DanceSearchError):
    """The caller's ``cancelled()`` hook asked to stop."""


@dataclass
class StitchedDance:
    record: MotionRecord
    provenance: list[dict[str, Any]]          # one entry per segment
    gs: float                                 # mean GS of the chosen segments (nan without audio)
    selection: Selection


@dataclass
class StitchResult:
    dances: list[StitchedDance]
    genre: str
    seconds: float
    segments: int
    timing: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def record(self) -> MotionRecord:
        return self.dances[0].record

    @property
    def provenance(self) -> list[dict[str, Any]]:
        return self.dances[0].provenance


class GCRMPipeline:
    def __init__(self, generator, scorer=None, catalog: CatalogCandidates | None = None, steps: int = 20,
                 guidance: float = 2.0, alpha: float = ALPHA, beta: float = BETA, cut: int = CUT) -> None:
        self.generator = generator
        self.scorer = scorer
        self.catalog = catalog
        self.steps, self.guidance = steps, guidance
        self.alpha, self.beta, self.cut = alpha, beta, cut

    @classmethod
    def from_pretrained(cls, generator_dir: str | Path | None = None, gs_dir: str | Path | None = None,
                        home: str | Path | None = None, embedder_run: str | Path | None = None,
                        db_url: str | None = None, progress: bool = False, **kwargs) -> "GCRMPipeline":
        """Generator run (default ``models/generator``), GS run (default ``models/gs``); with ``home``, catalog
        retrieval over its train split (text side from its index when it has one)."""
        from ..diffusion.pipeline import DancePipeline
        from ..genre_match.scorer import GSScorer

        from ..diffusion.cli import DEFAULT_RUN

        generator = DancePipeline.from_pretrained(generator_dir or DEFAULT_RUN)
        scorer = GSScorer.from_pretrained(gs_dir)
        catalog = (CatalogCandidates.from_workspace(home, scorer, embedder_run=embedder_run, db_url=db_url,
                                                    progress=progress) if home is not None else None)
        return cls(generator, scorer, catalog, **kwargs)

    # ------------------------------------------------------------------------------------------------
    @property
    def segment_frames(self) -> int:
        """Segment length: the generator's window (120 frames = 4 s for the shipped one)."""
        return int(getattr(self.generator, "window_frames", SEGMENT_FRAMES))

    def segments(self, frames: int) -> list[tuple[int, int]]:
        w = self.segment_frames
        n = max(1, int(np.ceil(frames / w)))
        return [(i * w, (i + 1) * w) for i in range(n)]

    def __call__(self, music: np.ndarray, genre: str, audio: tuple[np.ndarray, int] | None = None,
                 mel: np.ndarray | None = None, text: str | None = None, seconds: float | None = None, seed: int = 0,
                 candidates: int = 4, catalog_candidates: int | None = None, dances: int = 1,
                 progress: Callable[[float, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> StitchResult:
        """``music`` (T, 35) features at 30 fps; ``audio`` (y, sr) or a precomputed (T, n_mels) ``mel`` for GS.

        ``candidates``: diffusion samples per segment (M); ``catalog_candidates``: retrieved windows per
        segment (default: M // 2 when the pipeline has a catalog, else 0); ``dances``: how many different
        dances (distinct first choices)."""
        t_start = time.perf_counter()
        notes: list[str] = []

        def report(frac: float, msg: str) -> None:
            if progress is not None:
                progress(float(min(1.0, max(0.0, frac))), msg)

        def check() -> None:
            if cancelled is not None and cancelled():
                raise GenerationCancelled("generation cancelled")

        music = np.asarray(music, dtype=np.float32)
        if music.ndim != 2 or music.shape[1] != 35:
            raise InputError(None, "bad music features", field="music", expected="(T, 35)", got=str(music.shape))
        frames = len(music) if seconds is None else min(len(music), int(round(seconds * FPS)))
        w = self.segment_frames
        if frames < w:
            raise InputError(None, "music shorter than one segment", field="music",
                             expected=f">= {w} frames ({w / FPS:g} s)", got=f"{frames} frames")
        if candidates < 0 or (catalog_candidates is not None and catalog_candidates < 0) or dances < 1:
            raise InputError(None, "bad candidate counts", field="candidates", expected="M >= 0, dances >= 1",
                             got=f"{candidates}, {catalog_candidates}, {dances}")
        genre = self.generator.genres[self.generator.genre_index(genre)]
        k_cat = (candidates // 2 if self.catalog is not None else 0) if catalog_candidates is None else catalog_candidates
        if k_cat and self.catalog is None:
            raise InputError(None, "catalog candidates asked for but the pipeline has no catalog",
                             field="catalog_candidates", expected="0 (or load with home=...)", got=str(k_cat))
        if candidates + k_cat < 1:
            raise InputError(None, "no candidates", field="candidates", expected=">= 1 in all", got="0")
        spans = self.segments(frames)
        total = spans[-1][1]
        padded = np.concatenate([music[:frames], np.repeat(music[frames - 1:frames], total - frames, axis=0)])
        seg_music = np.stack([padded[a:b] for a, b in spans])
        timing: dict[str, float] = {}
        if mel is None and audio is not None and self.scorer is not None:
            t_mel = time.perf_counter()
            mel = self.scorer.mel(audio[0], audio[1], frames=total)
            timing["mel_s"] = round(time.perf_counter() - t_mel, 3)
        if mel is not None:
            from ..genre_match.mel import fit_frames

            mel = fit_frames(np.asarray(mel, dtype=np.float32)[:frames], total)
            seg_mel = np.stack([mel[a:b] for a, b in spans])
        else:
            seg_mel = None
            notes.append("no audio: GS not computed, candidates chosen by coherence only (alpha term off)")

        # 1. candidates -------------------------------------------------------------------------------
        check()
        report(0.0, f"sampling {candidates} diffusion candidates x {len(spans)} segments")
        t0 = time.perf_counter()
        seeds = [seed + i for i in range(candidates)]
        share = 0.7 if k_cat else 0.75

        def after_step(i: int, n_steps: int) -> None:
            report(share * (i + 1) / max(1, n_steps), f"diffusion step {i + 1}/{n_steps} "
                                                      f"({candidates} x {len(spans)} windows)")
            check()

        per_seg: list[list[Candidate]] = DiffusionCandidates(self.generator, self.steps, self.guidance).generate(
            seg_music, genre, seeds, after_step) if candidates else [[] for _ in spans]
        timing["diffusion_s"] = round(time.perf_counter() - t0, 3)
        if k_cat:
            t1 = time.perf_counter()
            if seg_mel is None:
                raise InputError(None, "catalog retrieval needs the music's audio (its mel)", field="audio")
            retrieved = self.catalog.retrieve(seg_mel, text, k_cat)
            for t in range(len(spans)):
                per_seg[t] = per_seg[t] + retrieved[t]
            timing["retrieval_s"] = round(time.perf_counter() - t1, 3)
            report(0.7, "catalog candidates retrieved")
            check()
        timing["candidates_s"] = round(time.perf_counter() - t0, 3)

        # 2. scores -----------------------------------------------------------------------------------
        t2 = time.perf_counter()
        m = max(len(c) for c in per_seg)
        valid = np.array([[i < len(c) for i in range(m)] for c in per_seg])
        gs = np.zeros((len(spans), m))
        if seg_mel is not None:
            music_emb = self.scorer.model.music_embeddings(seg_mel)
            todo = [c for cands in per_seg for c in cands if c.embedding is None]
            if todo:      # every candidate without a known embedding in one batch
                for c, e in zip(todo, self.scorer.model.dance_embeddings([c.positions for c in todo])):
                    c.embedding = np.asarray(e, dtype=np.float32)
            for t, cands in enumerate(per_seg):
                if cands:
                    gs[t, :len(cands)] = np.stack([c.embedding for c in cands]) @ music_emb[t]
        dim = 22 * 3
        starts = np.zeros((len(spans), m, dim))
        ends = np.zeros((len(spans), m, dim))
        for t, cands in enumerate(per_seg):
            for i, c in enumerate(cands):
                starts[t, i] = pose_descriptor(c.positions, c.features, self.cut)
                ends[t, i] = pose_descriptor(c.positions, c.features, len(c.features) - self.cut - 1)
        timing["scoring_s"] = round(time.perf_counter() - t2, 3)
        report(0.8, "candidates scored (GS + coherence)")
        check()

        # 3. selection and stitching -----------------------------------------------------------------------
        t3 = time.perf_counter()
        alpha = self.alpha if seg_mel is not None else 0.0
        selections = select_many(gs, starts, ends, dances, alpha, self.beta, valid)
        out = []
        for k, sel in enumerate(selections):
            feats = None
            prov = []
            for t, i in enumerate(sel.indices):
                c = per_seg[t][i]
                placed = c.features if feats is None else place_after(feats, c.features, self.cut)
                feats = placed if feats is None else join(feats, placed, self.cut)
                a, b = spans[t]
                prov.append({"segment": t, "start_s": round(a / FPS, 3), "end_s": round(min(b, frames) / FPS, 3),
                             "source": c.source, **c.info, "candidate": i,
                             "gs": float(sel.gs[t]) if seg_mel is not None else None, "cs": float(sel.cs[t]),
                             "score": float(sel.score[t])})
            record = decode(feats[:frames], name=f"gcrm dance {k}")
            out.append(StitchedDance(record, prov, float(np.mean(sel.gs)) if seg_mel is not None else float("nan"),
                                     sel))
            report(0.8 + 0.2 * (k + 1) / len(selections), f"dance {k + 1} of {len(selections)} stitched")
            check()
        timing["stitch_s"] = round(time.perf_counter() - t3, 3)
        timing["total_s"] = round(time.perf_counter() - t_start, 3)
        return StitchResult(out, genre, frames / FPS, len(spans), timing, notes)
