"""Validity checks of a workspace's stored clip media, shared by ``dancesearch check`` and the API.

A clip's files (``.motion.npz``, ``.music.npy``, audio) are written atomically by the ingester, but a
full disk, a copy interrupted by hand, a restore from a bad backup or bit rot can still leave a file
empty, truncated or overwritten.  Without a check the API streamed such files with 200 (``format=npz``,
``/audio``), answered a truncated npz with a plain-text 500 and random bytes with a 422 that blamed the
client.  The checks here are cheap enough to run before serving a file (the API caches their verdict
per file version) and are what ``dancesearch check`` runs over the whole catalog:

- motion (npz): a zip archive whose every member loads as a plain numpy array (CRC checked, no
  pickles) and which holds the arrays of a motion record (``fps``, ``trans``, ``positions``,
  ``joint_names``);
- music features (npy): a readable ``.npy`` header whose data fits the file, shape (T, 35);
- audio: the container opens with soundfile (libsndfile parses the header and finds the stream's
  length; a truncated Ogg stream does not open) and holds at least one frame; a WAV file must be as
  long as its RIFF header says (libsndfile opens a truncated one); formats libsndfile cannot open
  are checked by magic bytes.

Each check returns ``None`` when the file is fine, else one short sentence naming the problem (no
library advice such as numpy's "load it unsafely", which would mislead an operator).
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

MOTION_ARRAYS = ("fps", "trans", "positions", "joint_names")
MUSIC_FEATURE_DIM = 35
MEDIA_KINDS = ("motion", "music", "audio")
_SOUNDFILE_SUFFIXES = {".ogg", ".oga", ".opus", ".wav", ".flac", ".mp3", ".aiff", ".aif"}
_MAGIC = {".m4a": (4, b"ftyp"), ".mp4": (4, b"ftyp")}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _size_problem(path: Path) -> tuple[int | None, str | None]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None, "the file is missing"
    except OSError as exc:
        return None, f"the file cannot be read ({_short(exc)})"
    if not path.is_file():
        return None, "not a regular file"
    if st.st_size == 0:
        return 0, "the file is empty"
    return int(st.st_size), None


def motion_problem(path: Path) -> str | None:
    """Why a ``.motion.npz`` cannot be served, or None when every member loads and the record is complete."""
    path = Path(path)
    _, problem = _size_problem(path)
    if problem:
        return problem
    if not zipfile.is_zipfile(path):
        return "not an npz archive (truncated, or not a zip file)"
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            for name in names:
                z[name]  # decompresses and CRC-checks the member; refuses pickled objects
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            return "a member holds pickled Python objects, not a plain array"
        return f"a member does not load ({_short(exc)})"
    except Exception as exc:  # noqa: BLE001 - zipfile / zlib / numpy raise many types for damaged data
        return f"the archive is damaged ({type(exc).__name__}: {_short(exc)})"
    missing = [a for a in MOTION_ARRAYS if a not in names]
    if missing:
        return f"not a motion record: no {', '.join(missing)} array"
    return None


def music_problem(path: Path) -> str | None:
    """Why a ``.music.npy`` feature file is unusable, or None (header readable, data complete, (T, 35))."""
    path = Path(path)
    _, problem = _size_problem(path)
    if problem:
        return problem
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header, maps the data
    except Exception as exc:  # noqa: BLE001
        return f"not a readable .npy array ({type(exc).__name__}: {_short(exc)})"
    if arr.ndim != 2 or arr.shape[1] != MUSIC_FEATURE_DIM:
        return f"features of shape {tuple(arr.shape)}, expected (T, {MUSIC_FEATURE_DIM})"
    return None


def audio_problem(path: Path) -> str | None:
    """Why an audio file cannot be played, or None (soundfile opens it and it has frames)."""
    path = Path(path)
    _, problem = _size_problem(path)
    if problem:
        return problem
    suffix = path.suffix.lower()
    if suffix in _MAGIC:
        offset, magic = _MAGIC[suffix]
        with open(path, "rb") as fh:
            head = fh.read(offset + len(magic))
        return None if head[offset:] == magic else f"not a {suffix[1:]} file (no '{magic.decode()}' header)"
    if suffix not in _SOUNDFILE_SUFFIXES:
        return None  # a container nothing here can parse: served as it is
    riff = _riff_problem(path)
    if riff:
        return riff
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - libsndfile errors for truncated / foreign data
        return f"the audio does not open ({_short(exc).replace(repr(str(path)), 'it')})"
    if info.frames <= 0:
        return "the audio has no frames"
    return None


def _riff_problem(path: Path) -> str | None:
    """A WAV (RIFF) file shorter than its header says: libsndfile opens it anyway and plays the stump."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    declared = int.from_bytes(head[4:8], "little") + 8
    if declared != 0xFFFFFFFF + 8 and size < declared:  # 0xFFFFFFFF: size unknown (streamed / RF64)
        return f"truncated: the header announces {declared} bytes, the file has {size}"
    return None


CHECKS: dict[str, Callable[[Path], str | None]] = {"motion": motion_problem, "music": music_problem,
                                                   "audio": audio_problem}


def contained(home: Path, relative: str) -> Path | None:
    """Absolute path of a catalog media path, or None when it would lie outside ``home``."""
    root = Path(home).resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) else None


@dataclass(frozen=True)
class MediaProblem:
    """One broken file of one clip."""

    clip_id: int
    key: str
    kind: str
    file: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MediaReport:
    """What ``check_workspace`` found: counts and every problem, clip by clip."""

    clips: int = 0
    files: int = 0
    problems: list[MediaProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "clips": self.clips, "files": self.files,
                "broken_clips": len({p.clip_id for p in self.problems}),
                "problems": [p.as_dict() for p in self.problems]}


def clip_files(clip: Any) -> list[tuple[str, str]]:
    """(kind, relative path) of every media file a catalog clip row names."""
    out = [("motion", clip.motion_path)]
    if clip.music_path:
        out.append(("music", clip.music_path))
    if clip.audio_path:
        out.append(("audio", clip.audio_path))
    return [(k, p) for k, p in out if p]


def check_clips(home: Path, clips: Iterable[Any], progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None
                ) -> MediaReport:
    """Check every file of ``clips`` (catalog rows); a file shared by several clips is read once."""
    report = MediaReport()
    verdicts: dict[tuple[str, str], str | None] = {}
    items = list(clips)
    for clip in (progress(items) if progress else items):
        report.clips += 1
        for kind, rel in clip_files(clip):
            if (kind, rel) not in verdicts:
                path = contained(home, rel)
                verdicts[(kind, rel)] = ("the path lies outside the workspace" if path is None
                                         else CHECKS[kind](path))
                report.files += 1
            problem = verdicts[(kind, rel)]
            if problem:
                report.problems.append(MediaProblem(int(clip.id), str(clip.key), kind, rel, problem))
    return report


def check_workspace(workspace: Any, progress: bool = False) -> MediaReport:
    """Check the media of every clip in ``workspace``'s catalog."""
    from sqlalchemy.exc import SQLAlchemyError

    from .catalog import CatalogError

    if workspace.db_url == f"sqlite:///{workspace.catalog_path}" and not workspace.catalog_path.is_file():
        # opening would create an empty catalog (and the folder) behind a mistyped --home
        raise CatalogError(f"no catalog at {workspace.catalog_path}: ingest data first "
                           f"(dancesearch ingest npz DIR --home {workspace.home})")
    catalog = workspace.catalog(create=False)
    try:
        clips = catalog.clips()
    except SQLAlchemyError as exc:
        raise CatalogError(f"cannot read the catalog {workspace.db_url}: {_short(exc)} "
                           f"(is --home / --db right? `dancesearch ingest` creates it)") from exc
    finally:
        catalog.close()
    bar = None
    if progress:
        from tqdm import tqdm

        def bar(items: Iterable[Any]) -> Iterable[Any]:
            return tqdm(items, desc="checking media", unit="clip", file=sys.stderr)
    return check_clips(workspace.home, clips, bar)


# --- `dancesearch check` -----------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dancesearch check`` (called from ``indexer.cli.register``)."""
    from encoders.cliutil import add_common_options

    p = subparsers.add_parser(
        "check", help="find clips whose stored media files are missing or broken",
        description="Open every clip's motion (.motion.npz), music features (.music.npy) and audio file the "
                    "way the API does before serving them, and list the clips with a missing, empty, truncated "
                    "or unreadable file. Exit 1 when something is broken. Fix by re-ingesting the source "
                    "(`dancesearch ingest ...` rewrites missing or damaged media).")
    p.add_argument("--db", metavar="URL", default=None,
                   help="catalog database URL (default: sqlite:///HOME/catalog.sqlite)")
    add_common_options(p)
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from encoders.cliutil import EXIT_FAILED, EXIT_OK, emit, progress_enabled

    from .workspace import Workspace

    ws = Workspace.from_args(args)
    report = check_workspace(ws, progress=progress_enabled(args))

    def human() -> None:
        for p in report.problems:
            print(f"clip {p.clip_id} ({p.key}): {p.kind} {p.file}: {p.problem}")
        summary = (f"{report.clips} clips, {report.files} files checked: "
                   + ("all readable" if report.ok else
                      f"{len(report.problems)} broken files in {report.as_dict()['broken_clips']} clips"))
        print(summary, file=sys.stderr)

    emit(args, report.as_dict(), human)
    return EXIT_OK if report.ok else EXIT_FAILED
