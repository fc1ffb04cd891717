"""The clip catalog: SQLAlchemy 2 models (Sequence, Clip, Caption) and the queries other layers need.

A ``Clip.id`` is the vector id used by every index, so the catalog never reuses an id: SQLite tables
use AUTOINCREMENT, and re-ingesting an unchanged sequence keeps its clips' rows (and ids) in place;
a clip whose span or content changed gets a new id. Works with SQLite and PostgreSQL URLs.

Every write (``replace_sequence``, ``delete_sequence``, ``add_generated``) also bumps a change counter in
the same transaction (``catalog_meta`` row ``version``, read with :meth:`Catalog.version`), so a long-running
reader such as the API server can notice a re-ingest with one cheap query instead of diffing clips.

Schema changes are additive only: a new table is created by ``create_all`` the next time a writer opens
an existing catalog (no column of an existing table is ever added or changed), so every older
``catalog.sqlite`` keeps opening. Added so far: ``catalog_meta`` (change counter), ``generation_jobs``
(the API's generation jobs, :class:`GenerationJob`) and ``clip_provenance`` (how a ``generated`` clip was
made, :class:`ClipProvenance`). Readers of the added tables treat a missing table as empty.
"""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence as Seq

from sqlalchemy import (JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
                        create_engine, event, func, select, update)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from encoders.errors import DanceSearchError

SPLITS = ("train", "val", "test")
CAPTION_ORIGINS = ("file", "metadata", "request")   # request: the text a generation request was made with
GENERATED_SOURCE = "generated"   # source of the clips the generation API stores
GENERATED_SPLIT = "gen"          # their split: never train / val / test, so no training or evaluation reads them
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
JOB_FINAL_STATES = ("done", "failed", "cancelled")


class CatalogError(DanceSearchError):
    """The catalog database cannot be opened or written (bad URL, missing driver, locked file)."""


class Base(DeclarativeBase):
    pass


class Sequence(Base):
    """One source recording (a dance with its music), cut into clips."""

    __tablename__ = "sequences"
    __table_args__ = (UniqueConstraint("source", "name", name="uq_sequence_source_name"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    genre: Mapped[str] = mapped_column(String(64), index=True, default="unknown")
    dancer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fps: Mapped[float] = mapped_column(Float, default=30.0)
    num_frames: Mapped[int] = mapped_column(Integer, default=0)
    bpm: Mapped[float | None] = mapped_column(Float, nullable=True)
    has_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    split: Mapped[str] = mapped_column(String(8), default="train")
    meta: Mapped[dict] = mapped_column(JSON, default=dict)

    clips: Mapped[list["Clip"]] = relationship(back_populates="sequence", cascade="all, delete-orphan",
                                               order_by="Clip.clip_index")


class Clip(Base):
    """A fixed-length piece of a sequence: the unit that is embedded, indexed and returned by search."""

    __tablename__ = "clips"
    __table_args__ = (Index("ix_clips_genre", "genre"), Index("ix_clips_split", "split"),
                      Index("ix_clips_bpm", "bpm"), Index("ix_clips_source", "source"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"), index=True)
    clip_index: Mapped[int] = mapped_column(Integer)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    genre: Mapped[str] = mapped_column(String(64), default="unknown")
    dancer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    split: Mapped[str] = mapped_column(String(8), default="train")
    bpm: Mapped[float | None] = mapped_column(Float, nullable=True)
    motion_path: Mapped[str] = mapped_column(Text)
    music_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    audio_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[dict] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(64))

    sequence: Mapped[Sequence] = relationship(back_populates="clips", lazy="joined")
    captions: Mapped[list["Caption"]] = relationship(back_populates="clip", cascade="all, delete-orphan",
                                                     order_by="Caption.id", lazy="selectin")

    @property
    def caption_texts(self) -> list[str]:
        return [c.text for c in self.captions]

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON view of the clip (what the API and ``--json`` outputs build on)."""
        return {
            "id": self.id, "key": self.key, "source": self.source, "sequence": self.sequence.name,
            "clip_index": self.clip_index, "start_frame": self.start_frame, "end_frame": self.end_frame,
            "duration_s": self.duration_s, "genre": self.genre, "dancer": self.dancer, "split": self.split,
            "bpm": self.bpm, "motion_path": self.motion_path, "music_path": self.music_path,
            "audio_path": self.audio_path, "tags": dict(self.tags or {}), "captions": self.caption_texts,
        }


class Caption(Base):
    """A natural-language description of a clip; ``origin`` is ``file`` (captions JSONL) or ``metadata``."""

    __tablename__ = "captions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16), default="file")

    clip: Mapped[Clip] = relationship(back_populates="captions")


class CatalogMeta(Base):
    """Facts about the catalog itself, one integer per key; ``version`` counts committed writes."""

    __tablename__ = "catalog_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


VERSION_KEY = "version"


class GenerationJob(Base):
    """One ``POST /v1/generate`` request and its fate (kept across server restarts)."""

    __tablename__ = "generation_jobs"
    __table_args__ = (Index("ix_generation_jobs_state", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "progress": float(self.progress or 0.0), "stage": self.stage,
                "params": dict(self.params or {}), "result": self.result, "error": self.error,
                "cancel_requested": bool(self.cancel_requested), "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at}


class ClipProvenance(Base):
    """How a generated clip was made: model id, seed, parameters, segment origins (``data``, JSON)."""

    __tablename__ = "clip_provenance"

    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id", ondelete="CASCADE"), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    model_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


def _bump_version(s: Session) -> None:
    """Add one to the change counter inside the caller's transaction (creating the row on first use)."""
    done = s.execute(update(CatalogMeta).where(CatalogMeta.key == VERSION_KEY).values(value=CatalogMeta.value + 1))
    if not done.rowcount:
        s.add(CatalogMeta(key=VERSION_KEY, value=1))


def clip_key(source: str, sequence: str, clip_index: int) -> str:
    """The stable clip key ``"<source>/<sequence>#<index>"``."""
    return f"{source}/{sequence}#{clip_index}"


# --- rows the ingester hands over (plain data, so callers never touch sessions) ---------------------
@dataclass
class SequenceRow:
    source: str
    name: str
    path: str | None
    genre: str
    dancer: str | None
    fps: float
    num_frames: int
    bpm: float | None
    has_audio: bool
    split: str
    meta: dict = field(default_factory=dict)


@dataclass
class ClipRow:
    clip_index: int
    start_frame: int
    end_frame: int
    duration_s: float
    motion_path: str
    music_path: str | None
    audio_path: str | None
    tags: dict = field(default_factory=dict)
    captions: list[tuple[str, str]] = field(default_factory=list)  # (text, origin)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Catalog:
    """Engine + session factory for one catalog URL, and the read queries every layer uses.

    Returned ORM objects are detached from their session but fully loaded (columns, the clip's
    sequence and captions), so callers may read them freely after the call returns.
    """

    def __init__(self, url: str, create: bool = True, echo: bool = False) -> None:
        self.url = url
        try:
            kwargs: dict[str, Any] = {"echo": echo, "future": True}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            else:
                kwargs["pool_pre_ping"] = True
            self.engine: Engine = create_engine(url, **kwargs)
        except (ArgumentError, ModuleNotFoundError, ImportError) as exc:
            raise CatalogError(f"cannot open catalog {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            self.create_all()

    def create_all(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
        except OperationalError as exc:
            raise CatalogError(f"cannot create the catalog tables at {self.url!r}: {exc.orig}") from exc

    def drop_all(self) -> None:
        Base.metadata.drop_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # --- reads --------------------------------------------------------------------------------------
    def clips(self, split: str | None = None, genres: Iterable[str] | None = None,
              bpm_range: tuple[float | None, float | None] | None = None,
              source: str | None = None, ids: Iterable[int] | None = None) -> list[Clip]:
        """Clips ordered by id, filtered by split, any of ``genres``, ``bpm_range`` (inclusive, either
        end may be None), source and/or explicit ids."""
        stmt = select(Clip).order_by(Clip.id)
        if split is not None:
            stmt = stmt.where(Clip.split == split)
        genre_list = [g for g in (genres or []) if g]
        if genre_list:
            stmt = stmt.where(Clip.genre.in_(genre_list))
        if bpm_range is not None:
            lo, hi = bpm_range
            if lo is not None:
                stmt = stmt.where(Clip.bpm >= lo)
            if hi is not None:
                stmt = stmt.where(Clip.bpm <= hi)
        if source is not None:
            stmt = stmt.where(Clip.source == source)
        if ids is not None:
            stmt = stmt.where(Clip.id.in_([int(i) for i in ids]))
        with self.session() as s:
            return list(s.scalars(stmt).unique().all())

    def clip(self, clip_id: int) -> Clip | None:
        with self.session() as s:
            return s.get(Clip, int(clip_id))

    def clip_by_key(self, key: str) -> Clip | None:
        with self.session() as s:
            return s.scalars(select(Clip).where(Clip.key == key)).unique().one_or_none()

    def sequence(self, source: str, name: str) -> Sequence | None:
        with self.session() as s:
            return s.scalars(select(Sequence).where(Sequence.source == source, Sequence.name == name)).one_or_none()

    def sequences(self, source: str | None = None) -> list[Sequence]:
        stmt = select(Sequence).order_by(Sequence.id)
        if source is not None:
            stmt = stmt.where(Sequence.source == source)
        with self.session() as s:
            return list(s.scalars(stmt).all())

    def captions_for(self, clip_ids: Iterable[int]) -> dict[int, list[str]]:
        """Caption texts per clip id (every requested id is a key; clips without captions map to [])."""
        ids = [int(i) for i in clip_ids]
        out: dict[int, list[str]] = {i: [] for i in ids}
        if not ids:
            return out
        with self.session() as s:
            for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
                chunk = ids[start:start + 900]
                rows = s.execute(select(Caption.clip_id, Caption.text).where(Caption.clip_id.in_(chunk))
                                 .order_by(Caption.id))
                for cid, text in rows:
                    out[cid].append(text)
        return out

    def genre_counts(self, split: str | None = None) -> dict[str, int]:
        """Clip count per genre, most frequent first (ties by name)."""
        stmt = select(Clip.genre, func.count(Clip.id)).group_by(Clip.genre)
        if split is not None:
            stmt = stmt.where(Clip.split == split)
        with self.session() as s:
            rows = [(g, int(n)) for g, n in s.execute(stmt)]
        return dict(sorted(rows, key=lambda r: (-r[1], r[0])))

    def count(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count(Clip.id))) or 0)

    def version(self) -> int | None:
        """The change counter: bumped by every committed write; 0 before the first one, None when the
        catalog predates the counter (its ``catalog_meta`` table is created by the next writer).

        A plain connection, not an ORM session: servers poll this (~0.2 ms instead of ~1 ms)."""
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(select(CatalogMeta.value).where(CatalogMeta.key == VERSION_KEY)).scalar() or 0)
        except (OperationalError, ProgrammingError):
            return None

    def stats(self) -> dict[str, Any]:
        """Counts for ``corpus stats``: clips, sequences, genres, splits, sources, and tag key -> value -> n."""
        with self.session() as s:
            n_clips = int(s.scalar(select(func.count(Clip.id))) or 0)
            n_seq = int(s.scalar(select(func.count(Sequence.id))) or 0)
            splits = {k: int(v) for k, v in s.execute(select(Clip.split, func.count(Clip.id)).group_by(Clip.split))}
            sources = {k: int(v) for k, v in s.execute(select(Clip.source, func.count(Clip.id)).group_by(Clip.source))}
            tag_counts: dict[str, Counter] = {}
            for (tags,) in s.execute(select(Clip.tags)):
                for key, value in (tags or {}).items():
                    values = value if isinstance(value, list) else [value]
                    for v in values:
                        tag_counts.setdefault(str(key), Counter())[str(v)] += 1
            captioned = int(s.scalar(select(func.count(func.distinct(Caption.clip_id)))) or 0)
        return {
            "clips": n_clips,
            "sequences": n_seq,
            "captioned_clips": captioned,
            "genres": self.genre_counts(),
            "splits": dict(sorted(splits.items())),
            "sources": dict(sorted(sources.items())),
            "tags": {k: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for k, c in sorted(tag_counts.items())},
        }

    # --- writes -------------------------------------------------------------------------------------
    def replace_sequence(self, seq: SequenceRow, clips: Seq[ClipRow], content_changed: bool) -> list[int]:
        """Insert or update one sequence and its clips in ONE transaction; returns clip ids by clip_index.

        A clip whose key exists with the same span keeps its row and id unless ``content_changed``
        (then it gets a new id: an index holding the old id must not silently point at other content).
        Clips of the sequence that are no longer produced are deleted. Captions are replaced.
        """
        with self.session() as s:
            row = s.scalars(select(Sequence).where(Sequence.source == seq.source, Sequence.name == seq.name)
                            ).one_or_none()
            if row is None:
                row = Sequence(source=seq.source, name=seq.name)
                s.add(row)
            for attr in ("path", "genre", "dancer", "fps", "num_frames", "bpm", "has_audio", "split", "meta"):
                setattr(row, attr, getattr(seq, attr))
            s.flush()
            existing = {c.clip_index: c for c in s.scalars(select(Clip).where(Clip.sequence_id == row.id)).unique()}
            wanted = {c.clip_index for c in clips}
            for idx, old in list(existing.items()):
                keep = (idx in wanted and not content_changed)
                if keep:
                    new = next(c for c in clips if c.clip_index == idx)
                    keep = (old.start_frame, old.end_frame) == (new.start_frame, new.end_frame)
                if not keep:
                    s.delete(old)
                    del existing[idx]
            s.flush()
            ids: list[int] = []
            for c in sorted(clips, key=lambda c: c.clip_index):
                clip = existing.get(c.clip_index)
                if clip is None:
                    clip = Clip(key=clip_key(seq.source, seq.name, c.clip_index), sequence_id=row.id,
                                clip_index=c.clip_index)
                    s.add(clip)
                clip.start_frame, clip.end_frame, clip.duration_s = c.start_frame, c.end_frame, c.duration_s
                clip.genre, clip.dancer, clip.split, clip.bpm = seq.genre, seq.dancer, seq.split, seq.bpm
                clip.motion_path, clip.music_path, clip.audio_path = c.motion_path, c.music_path, c.audio_path
                clip.tags, clip.source = dict(c.tags), seq.source
                clip.captions = [Caption(text=t, origin=o) for t, o in c.captions]
                s.flush()
                ids.append(int(clip.id))
            _bump_version(s)
            return ids

    def delete_sequence(self, source: str, name: str) -> bool:
        with self.session() as s:
            row = s.scalars(select(Sequence).where(Sequence.source == source, Sequence.name == name)).one_or_none()
            if row is None:
                return False
            s.delete(row)
            _bump_version(s)
            return True

    # --- generated clips and generation jobs (tables added by create_all; see the module docstring) -----
    def add_generated(self, seq: SequenceRow, clips: Seq[ClipRow], provenance: Seq[dict],
                      job_id: str | None = None) -> list[int]:
        """Insert a new sequence of generated clips with their provenance rows in ONE transaction; returns
        the clip ids in ``clips`` order. ``provenance[i]`` belongs to ``clips[i]`` (its ``model_id`` key is
        also stored in a column)."""
        if len(provenance) != len(clips):
            raise ValueError("one provenance dict per clip")
        with self.session() as s:
            if s.scalars(select(Sequence).where(Sequence.source == seq.source, Sequence.name == seq.name)
                         ).one_or_none() is not None:
                raise CatalogError(f"sequence {seq.source}/{seq.name} already exists")
            row = Sequence(source=seq.source, name=seq.name)
            for attr in ("path", "genre", "dancer", "fps", "num_frames", "bpm", "has_audio", "split", "meta"):
                setattr(row, attr, getattr(seq, attr))
            s.add(row)
            s.flush()
            ids: list[int] = []
            for c, prov in zip(clips, provenance):
                clip = Clip(key=clip_key(seq.source, seq.name, c.clip_index), sequence_id=row.id,
                            clip_index=c.clip_index, start_frame=c.start_frame, end_frame=c.end_frame,
                            duration_s=c.duration_s, genre=seq.genre, dancer=seq.dancer, split=seq.split,
                            bpm=seq.bpm, motion_path=c.motion_path, music_path=c.music_path,
                            audio_path=c.audio_path, tags=dict(c.tags), source=seq.source)
                clip.captions = [Caption(text=t, origin=o) for t, o in c.captions]
                s.add(clip)
                s.flush()
                s.add(ClipProvenance(clip_id=clip.id, job_id=job_id, model_id=prov.get("model_id"), data=dict(prov)))
                ids.append(int(clip.id))
            _bump_version(s)
            return ids

    def provenance(self, clip_id: int) -> dict | None:
        """The provenance dict of a generated clip (None for other clips, or a catalog without the table)."""
        try:
            with self.session() as s:
                row = s.get(ClipProvenance, int(clip_id))
                return None if row is None else {**dict(row.data or {}), "job_id": row.job_id, "model_id": row.model_id}
        except (OperationalError, ProgrammingError):
            return None

    def add_job(self, job_id: str, params: dict, created_at: float) -> dict[str, Any]:
        with self.session() as s:
            row = GenerationJob(id=job_id, state="queued", progress=0.0, stage="queued", params=dict(params),
                                cancel_requested=False, created_at=float(created_at))
            s.add(row)
            s.flush()
            return row.as_dict()

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(GenerationJob, str(job_id))
            return None if row is None else row.as_dict()

    def jobs(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Jobs (oldest first), optionally only those in ``states``."""
        stmt = select(GenerationJob).order_by(GenerationJob.created_at, GenerationJob.id)
        if states is not None:
            stmt = stmt.where(GenerationJob.state.in_(list(states)))
        with self.session() as s:
            return [r.as_dict() for r in s.scalars(stmt)]

    def count_jobs(self, states: Iterable[str]) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count(GenerationJob.id)).where(GenerationJob.state.in_(list(states))))
                       or 0)

    def update_job(self, job_id: str, only_if_state: Iterable[str] | None = None, **fields: Any) -> bool:
        """Set ``fields`` of a job; with ``only_if_state`` only when its state is one of them (an atomic
        compare-and-set: claiming a queued job, cancelling one that has not started). True when it changed."""
        unknown = set(fields) - {"state", "progress", "stage", "result", "error", "cancel_requested", "started_at",
                                 "finished_at", "params"}
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        stmt = update(GenerationJob).where(GenerationJob.id == str(job_id))
        if only_if_state is not None:
            stmt = stmt.where(GenerationJob.state.in_(list(only_if_state)))
        with self.session() as s:
            return bool(s.execute(stmt.values(**fields)).rowcount)
