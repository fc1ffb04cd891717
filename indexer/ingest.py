"""Ingestion: a source folder -> clips on disk (motion, music features, audio) + catalog rows.

Per sequence: load and validate (the adapter), analyse the music once (cached by audio content), check
that motion and music have the same length (within max(1 s, 5 %); the longer is trimmed), cut clips,
write each clip's files atomically under ``HOME/media/<source>/<sequence>/``, then write the catalog
rows in one transaction. A bad file becomes a ``failed`` entry (path + reason) and the batch goes on.
A disk that refuses writes (full, read-only, no permission, over quota) is different: every later file
would fail the same way, so the batch stops at once with one :class:`StorageError`; the sequence being
written is rolled back (its new media folder removed), the finished ones are kept, and re-running the
same command continues where it stopped.

Re-ingesting is idempotent: sequences are upserted by (source, name), clip keys are stable, and a
clip whose span and source content are unchanged keeps its id (indexes store clip ids). When the
content fingerprint and clip parameters match what the catalog recorded and the media files exist,
the media are not rewritten.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from encoders.atomic_io import StorageError, atomic_save_npy, ensure_dir, storage_error
from encoders.workers import die_with_parent
from encoders.errors import DanceSearchError, InputError

from .captions import CaptionEntry, assign_captions, parse_captions_file
from .catalog import Catalog, ClipRow, SequenceRow
from .clipping import DEFAULT_CLIP_SECONDS, ClipSpan, assign_split, check_min_seconds, clip_spans
from .sources import SequenceItem, SourceAdapter, failure_reason, get_adapter
from .workspace import Workspace

MEDIA_VERSION = 1            # bump when the per-clip file layout or contents change
LENGTH_TOLERANCE_S = 1.0     # motion vs music: max(1 s, 5 % of the longer) ...
LENGTH_TOLERANCE_FRAC = 0.05
_SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class IngestReport:
    """What one ``ingest`` call did; ``as_dict()`` is the ``--json`` output."""

    sequences: int = 0
    clips: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    unchanged: int = 0                       # sequences whose media were already up to date
    warnings: list[str] = field(default_factory=list)
    per_sequence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"sequences": self.sequences, "clips": self.clips, "unchanged": self.unchanged,
                "failed": list(self.failed)}


def file_sha1(paths: Sequence[Path | None]) -> str:
    """SHA-1 over the bytes of ``paths`` (None entries mark an absent file), in order."""
    h = hashlib.sha1()
    for p in paths:
        if p is None:
            h.update(b"\0none\0")
            continue
        h.update(b"\0file\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def length_tolerance_s(a_s: float, b_s: float) -> float:
    return max(LENGTH_TOLERANCE_S, LENGTH_TOLERANCE_FRAC * max(a_s, b_s))


def _clip_paths(ws: Workspace, source: str, name: str, index: int, has_audio: bool) -> dict[str, Path | None]:
    d = ws.sequence_media_dir(source, name)
    return {"motion": d / f"{index}.motion.npz",
            "music": d / f"{index}.music.npy" if has_audio else None,
            "audio": d / f"{index}.ogg" if has_audio else None}


def _remove_stale_media(ws: Workspace, source: str, name: str, keep: int) -> None:
    """Delete clip files with an index >= ``keep`` (a re-ingest that produced fewer clips)."""
    d = ws.sequence_media_dir(source, name)
    if not d.is_dir():
        return
    for p in d.iterdir():
        head = p.name.split(".", 1)[0]
        if head.isdigit() and int(head) >= keep and p.is_file():
            p.unlink()


class _Ingester:
    def __init__(self, ws: Workspace, catalog: Catalog, adapter: SourceAdapter, source: str,
                 captions: list[CaptionEntry], clip_seconds: float, stride_seconds: float | None,
                 min_seconds: float | None = None) -> None:
        self.ws, self.catalog, self.adapter, self.source = ws, catalog, adapter, source
        self.captions = captions
        self.clip_seconds, self.stride_seconds, self.min_seconds = clip_seconds, stride_seconds, min_seconds
        self.matched_entries: set[int] = set()
        self.seen: set[str] = set()
        self.last_name: str | None = None     # the sequence name of the candidate being ingested, once known

    def run_one(self, cand: Path) -> tuple[int, bool]:
        """Ingest one candidate; returns (clips written, media unchanged). Raises on bad input."""
        self.last_name = None
        item = self.adapter.load(cand)
        self.last_name = item.name
        if "/" in item.name or "\\" in item.name or item.name in ("", ".", ".."):
            raise InputError(cand, f"unusable sequence name {item.name!r}")
        if item.name in self.seen:
            raise InputError(cand, f"a sequence named {item.name!r} was already ingested in this batch")
        self.seen.add(item.name)
        if self.adapter.requires_audio and item.audio is None:
            raise InputError(cand, "missing audio: this format needs the music of every sequence")
        has_audio = item.audio is not None
        content_fp = file_sha1([item.path, item.audio])
        media_fp = hashlib.sha1(f"{content_fp}|{self.clip_seconds}|{self.stride_seconds}|{MEDIA_VERSION}"
                                .encode()).hexdigest()
        existing = self.catalog.sequence(self.source, item.name)
        old_meta = dict(existing.meta or {}) if existing is not None else {}
        content_changed = existing is not None and old_meta.get("content_sha1") != content_fp

        features: np.ndarray | None = None
        y = sr = None
        meta_extra: dict[str, Any] = {}
        analysed_bpm: float | None = None
        num_frames = item.motion.num_frames
        media_ok = existing is not None and old_meta.get("media_sha1") == media_fp
        if media_ok:
            num_frames = int(existing.num_frames)
            analysed_bpm = old_meta.get("analysed_bpm")
            meta_extra = {k: old_meta[k] for k in ("motion_duration_s", "music_duration_s", "trimmed_frames")
                          if k in old_meta}
        elif has_audio:
            from encoders.music.audio import load_audio
            from encoders.music.features import analyse_file

            analysis = analyse_file(item.audio, cache_dir=self.ws.feature_cache_dir)
            features = np.asarray(analysis.features, dtype=np.float32)
            motion_s, music_s = item.motion.duration_s, float(analysis.duration_s)
            tol = length_tolerance_s(motion_s, music_s)
            if abs(motion_s - music_s) > tol:
                raise InputError(cand, f"motion is {motion_s:.2f} s but its music {item.audio.name} is "
                                       f"{music_s:.2f} s (tolerance {tol:.2f} s)", field="length")
            num_frames = min(item.motion.num_frames, len(features))
            bpm_value = float(analysis.bpm) if analysis.bpm is not None else float("nan")
            analysed_bpm = round(bpm_value, 2) if math.isfinite(bpm_value) and bpm_value > 0 else None
            meta_extra = {"motion_duration_s": round(motion_s, 3), "music_duration_s": round(music_s, 3),
                          "trimmed_frames": int(item.motion.num_frames - num_frames)}
            y, sr = load_audio(item.audio, sr=None, mono=True)

        spans = clip_spans(num_frames, item.motion.fps, self.clip_seconds, self.stride_seconds, self.min_seconds)
        if not spans:
            least = (f"half a clip ({self.clip_seconds / 2:.2f} s)" if self.min_seconds is None
                     else f"the minimum length ({self.min_seconds:.2f} s)")
            raise InputError(cand, f"too short: {num_frames / item.motion.fps:.2f} s is less than {least}")
        if media_ok:
            media_ok = all(p is None or p.is_file()
                           for s in spans for p in _clip_paths(self.ws, self.source, item.name, s.index, has_audio).values())
        if not media_ok and features is None and has_audio:
            # media were expected to be reusable but some file is gone: compute everything again
            from encoders.music.audio import load_audio
            from encoders.music.features import analyse_file

            analysis = analyse_file(item.audio, cache_dir=self.ws.feature_cache_dir)
            features = np.asarray(analysis.features, dtype=np.float32)
            if len(features) < num_frames:
                raise InputError(cand, "music features shorter than the recorded clip frames", field="length")
            y, sr = load_audio(item.audio, sr=None, mono=True)

        media_dir = self.ws.sequence_media_dir(self.source, item.name)
        new_dirs = [d for d in (media_dir.parent, media_dir) if not d.exists()]
        try:
            if not media_ok:
                self._write_media(item, spans, features, y, sr)
            self._record(item, spans, has_audio, num_frames, analysed_bpm, meta_extra, content_fp, media_fp,
                         old_meta, content_changed)
        except BaseException:
            # nothing of this sequence reached the catalog (one transaction): a media folder this call
            # created holds only half of its files, and no catalog row will ever point at it
            _remove_new_dirs(new_dirs)
            raise
        _remove_stale_media(self.ws, self.source, item.name, keep=len(spans))
        return len(spans), media_ok

    def _record(self, item: SequenceItem, spans: list[ClipSpan], has_audio: bool, num_frames: int,
                analysed_bpm: float | None, meta_extra: dict[str, Any], content_fp: str, media_fp: str,
                old_meta: dict[str, Any], content_changed: bool) -> None:
        """The sequence's catalog rows (clips, captions, tags) in one transaction."""
        split = item.split or assign_split(self.source, item.name, item.split_group)
        bpm = item.bpm if item.bpm is not None else analysed_bpm
        annotations, unmatched = assign_captions(self.captions, self.source, item.name, spans)
        unmatched_ids = {id(e) for e in unmatched}
        self.matched_entries.update(id(e) for e in self.captions
                                    if e.matches_sequence(self.source, item.name) and id(e) not in unmatched_ids)
        clip_rows = []
        for s in spans:
            paths = _clip_paths(self.ws, self.source, item.name, s.index, has_audio)
            ann = annotations.get(s.index)
            tags = dict(item.tags)
            caps: list[tuple[str, str]] = [(c, "metadata") for c in item.captions]
            if ann is not None:
                tags.update(ann.tags)
                caps += [(c, "file") for c in ann.captions if c not in item.captions]
            clip_rows.append(ClipRow(
                clip_index=s.index, start_frame=s.start_frame, end_frame=s.end_frame,
                duration_s=round(s.duration_s, 6), motion_path=self.ws.relative(paths["motion"]),
                music_path=self.ws.relative(paths["music"]) if paths["music"] else None,
                audio_path=self.ws.relative(paths["audio"]) if paths["audio"] else None,
                tags=tags, captions=caps))
        meta = {**item.meta, **meta_extra, "content_sha1": content_fp, "media_sha1": media_fp,
                "clip_seconds": self.clip_seconds, "stride_seconds": self.stride_seconds,
                **({"min_seconds": self.min_seconds} if self.min_seconds is not None else {}),
                "analysed_bpm": analysed_bpm, "audio": str(item.audio) if item.audio else None}
        row = SequenceRow(source=self.source, name=item.name, path=str(item.path), genre=item.genre,
                          dancer=item.dancer, fps=float(item.motion.fps), num_frames=int(num_frames), bpm=bpm,
                          has_audio=has_audio, split=split, meta=meta)
        self.catalog.replace_sequence(row, clip_rows, content_changed=content_changed)

    def _write_media(self, item: SequenceItem, spans: list[ClipSpan], features: np.ndarray | None,
                     y: np.ndarray | None, sr: int | None) -> None:
        from encoders.music.audio import audio_segment, write_audio

        for s in spans:
            paths = _clip_paths(self.ws, self.source, item.name, s.index, item.audio is not None)
            item.motion.slice(s.start_frame, s.end_frame).save(paths["motion"])
            if features is not None and paths["music"] is not None:
                atomic_save_npy(paths["music"], np.ascontiguousarray(features[s.start_frame:s.end_frame], dtype=np.float32))
            if y is not None and sr is not None and paths["audio"] is not None:
                seg = audio_segment(y, sr, s.start_s, s.end_s)
                if seg.shape[-1] > 0:
                    write_audio(paths["audio"], seg, sr, format="ogg")


def _remove_new_dirs(dirs: Sequence[Path]) -> None:
    """Remove folders a failed sequence created (innermost first; the outer one only when left empty)."""
    for d in reversed(dirs):
        try:
            if d == dirs[-1]:
                shutil.rmtree(d, ignore_errors=True)
            else:
                d.rmdir()
        except OSError:
            pass


def storage_failure(exc: BaseException, workspace: Workspace) -> StorageError | None:
    """``exc`` as a :class:`StorageError` when it means the workspace's disk refuses writes, else None.

    Besides the file writes (which :mod:`encoders.atomic_io` recognises), the SQLite catalog reports a
    full or read-only disk through SQLAlchemy with only a message.
    """
    err = storage_error(exc)
    if err is not None:
        return err
    try:
        from sqlalchemy.exc import DBAPIError
    except ImportError:  # pragma: no cover - SQLAlchemy is a hard dependency
        return None
    if isinstance(exc, DBAPIError):
        text = str(getattr(exc, "orig", exc)).lower()
        where = workspace.catalog_path if workspace.db_url == f"sqlite:///{workspace.catalog_path}" else workspace.db_url
        if "database or disk is full" in text:
            return StorageError(where, errno.ENOSPC)
        if "readonly database" in text or "read-only" in text:
            return StorageError(where, errno.EROFS)
    return None


# --- feature workers -------------------------------------------------------------------------------
def _warm_one(kind: str, root: str, candidate: str, cache_dir: str) -> None:
    """Worker: analyse one candidate's music into the feature cache (errors surface later, in order)."""
    try:
        item = get_adapter(kind, root).load(Path(candidate))
        if item.audio is not None:
            from encoders.music.features import analyse_file

            analyse_file(item.audio, cache_dir=Path(cache_dir))
    except Exception:  # the sequential pass reports this sequence's failure with its reason
        pass


class _FeaturePrefetcher:
    """Analyse the music of upcoming sequences in worker processes while the main process ingests.

    Music analysis (librosa CQT / chroma) is the slowest step of ingestion and each sequence is
    independent, so workers compute it into the on-disk feature cache ahead of the sequential pass,
    which then finds every analysis cached. Catalog writes stay in the main process, in order
    (one transaction per sequence), so the work overlaps without any shared database writer.
    """

    def __init__(self, kind: str, root: str | Path, candidates: Sequence[Path], cache_dir: Path, workers: int) -> None:
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing as mp

        ensure_dir(cache_dir)
        # spawn: torch / numba state is not fork-safe
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                        initializer=die_with_parent, initargs=(os.getpid(),))
        self.futures = {str(c): self.pool.submit(_warm_one, kind, str(root), str(c), str(cache_dir))
                        for c in candidates}

    def wait_for(self, candidate: Path) -> None:
        fut = self.futures.get(str(candidate))
        if fut is not None:
            try:
                fut.result()
            except Exception:  # noqa: BLE001 - a lost worker (e.g. killed): the sequential pass analyses it
                pass

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _stem(path: Path) -> str:
    """The sequence name a file most likely has (``a.bvh.gz`` -> ``a``) when loading it failed."""
    return path.name.split(".", 1)[0]


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def ingest(workspace: Workspace, kind: str, path: str | Path, captions_file: str | Path | None = None,
           clip_seconds: float = DEFAULT_CLIP_SECONDS, stride_seconds: float | None = None,
           progress: bool = True, source: str | None = None, workers: int = 1,
           min_seconds: float | None = None) -> IngestReport:
    """Ingest every sequence of ``path`` (a folder of ``kind``) into ``workspace``.

    ``source`` names the corpus in keys and media paths (default: ``kind``). ``min_seconds`` is the
    shortest sequence that still gives a (shorter) clip; the default None keeps the usual policy, half a
    clip (:mod:`indexer.clipping`); ``eval real-data`` passes 4 s so short real recordings are evaluated
    instead of failing as too short. It does not change the clips of a sequence that gives clips anyway,
    so the media fingerprint ignores it. Raises
    :class:`DanceSearchError` only for problems that stop the whole batch (bad arguments, an unreadable
    captions file, a folder that is not of ``kind``, an unusable catalog); bad sequences are reported in
    ``IngestReport.failed``. ``workers`` > 1 analyses the music of many sequences in parallel first.
    """
    if not (clip_seconds > 0 and math.isfinite(clip_seconds)):
        raise DanceSearchError(f"--clip-seconds must be a positive number, got {clip_seconds}")
    if stride_seconds is not None and not (stride_seconds > 0 and math.isfinite(stride_seconds)):
        raise DanceSearchError(f"--stride-seconds must be a positive number, got {stride_seconds}")
    try:
        check_min_seconds(min_seconds, clip_seconds)
    except ValueError as exc:
        raise DanceSearchError(str(exc)) from None
    source = source or kind
    if not _SOURCE_RE.match(source):
        raise DanceSearchError(f"source name {source!r} must be letters, digits, '_', '.', '-' (max 64)")
    try:
        adapter = get_adapter(kind, path)
    except KeyError as exc:
        raise DanceSearchError(str(exc.args[0])) from None
    entries = adapter.extra_captions()
    if captions_file is not None:
        entries += parse_captions_file(captions_file)
    try:
        workspace.ensure()
    except OSError as exc:
        err = storage_error(exc, workspace.home)
        if err is None:
            raise
        raise err from exc
    catalog = workspace.catalog()
    report = IngestReport()
    report.failed += [f.as_dict() for f in adapter.failures]
    prefetch: _FeaturePrefetcher | None = None
    ing = _Ingester(workspace, catalog, adapter, source, entries, float(clip_seconds),
                    None if stride_seconds is None else float(stride_seconds),
                    None if min_seconds is None else float(min_seconds))
    failed_names: set[str] = set()
    try:
        candidates = adapter.candidates()
        bar = tqdm(candidates, desc=f"ingest {kind}", unit="seq", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True)
        for i, cand in enumerate(bar):
            if prefetch is not None:
                prefetch.wait_for(cand)
            try:
                n, unchanged = ing.run_one(cand)
            except InputError as exc:
                report.failed.append({"path": exc.path or str(cand), "reason": failure_reason(exc)})
                failed_names.add(ing.last_name or _stem(cand))
                continue
            except Exception as exc:  # one broken file must not stop the batch; the reason is reported
                fatal = storage_failure(exc, workspace)
                if fatal is not None:   # ... but a disk that refuses writes stops it: the rest would fail too
                    raise fatal.with_note(
                        f"ingest stopped at {cand.name} ({report.sequences} of {len(candidates)} sequences done "
                        f"and kept; run the same command again to continue)") from exc
                report.failed.append({"path": str(cand), "reason": failure_reason(exc)})
                failed_names.add(ing.last_name or _stem(cand))
                continue
            report.sequences += 1
            report.clips += n
            report.unchanged += int(unchanged)
            report.per_sequence.append({"path": str(cand), "clips": n, "unchanged": unchanged})
            bar.set_postfix(clips=report.clips, failed=len(report.failed))
            if not unchanged and prefetch is None and workers > 1 and len(candidates) - i > 2:
                # the first sequence that needed work: analyse the music of the rest ahead, in workers. Not
                # before: on a re-ingest where nothing changed, starting workers (each importing librosa and
                # loading every file again) made it twice as slow as no workers at all
                prefetch = _FeaturePrefetcher(kind, adapter.root, candidates[i + 1:], workspace.feature_cache_dir,
                                              workers)
        for e in entries:
            # a line for a sequence that failed is not news: the failure is reported already
            if id(e) not in ing.matched_entries and not any(e.matches_sequence(source, n) for n in failed_names):
                report.warnings.append(f"{e.source_file}: line {e.line}: no ingested clip matches "
                                       f"{e.sequence!r}" + (f" #{e.clip_index}" if e.clip_index is not None else
                                                            f" [{e.start}, {e.end}] s"))
        if not candidates and not adapter.failures:
            report.warnings.append(f"{adapter.root}: no {kind} files found")
    finally:
        if prefetch is not None:
            prefetch.close()
        catalog.close()
    return report
