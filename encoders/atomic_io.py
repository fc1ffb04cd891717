"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A crash or kill mid-write leaves either the old file or the new one, never half of one.

Every write the engine makes goes through :func:`atomic_path`, so this is also the one place that
recognises a disk that refuses writes (full, read-only, no permission, over quota): such an
``OSError`` becomes a :class:`StorageError` naming the path and the errno's meaning. Callers that
process batches (ingest, index build) treat it as fatal for the whole batch, because every later
file would fail the same way.
"""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import DanceSearchError, InputError

#: errnos that mean "this file system will not take writes here"; retrying the next file is pointless.
STORAGE_ERRNOS: frozenset[int] = frozenset(
    e for e in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, getattr(errno, "EDQUOT", None))
    if e is not None)

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.EROFS: "the file system is read-only: use a writable --home",
    errno.EACCES: "no permission to write there: use a writable --home or fix the folder's permissions",
    errno.EPERM: "the operation is not permitted there: use a writable --home",
}
if hasattr(errno, "EDQUOT"):
    _HINTS[errno.EDQUOT] = "the disk quota is exceeded: free some space and run the command again"


class StorageError(DanceSearchError):
    """A write was refused by the file system (ENOSPC, EROFS, EACCES, EPERM, EDQUOT).

    ``note`` adds what the caller was doing (e.g. how far a batch got) to the message.
    """

    def __init__(self, path: str | Path | None, err: int, note: str | None = None) -> None:
        self.path = None if path is None else str(path)
        self.errno = err
        self.note = note
        name = errno.errorcode.get(err, str(err))
        where = f"cannot write {self.path}" if self.path else "cannot write"
        msg = f"{where}: {os.strerror(err)} ({name}); {_HINTS.get(err, 'check the disk')}"
        if note:
            msg += f". {note}"
        super().__init__(msg)

    def with_note(self, note: str) -> "StorageError":
        """The same error with ``note`` appended (the original stays the ``__cause__``)."""
        return StorageError(self.path, self.errno, note)


def _disk_is_full(folder: Path) -> bool:
    """True when ``folder``'s file system has no free block for this user (a non-Python writer failed there)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    free = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    return st.f_blocks > 0 and free == 0   # f_blocks 0: a file system that reports nothing (some FUSE)


def storage_error(exc: BaseException, path: str | Path | None = None) -> StorageError | None:
    """``exc`` as a :class:`StorageError` when it means the disk refuses writes, else None.

    An ``OSError`` is judged by its errno. Libraries that write files themselves (libsndfile, FAISS)
    raise ``RuntimeError`` without an errno; when such an error happens while the target file system has
    no free space left, it is reported as ENOSPC, which is what it is.
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return StorageError(exc.filename if exc.filename is not None else path, exc.errno)
    if path is not None and isinstance(exc, RuntimeError):
        folder = Path(path).parent
        if _disk_is_full(folder):
            return StorageError(path, errno.ENOSPC)
    return None


def ensure_dir(path: str | Path) -> Path:
    """``mkdir -p path``; a file system that refuses it raises :class:`StorageError`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = storage_error(exc, path)
        if err is None:
            raise
        raise err from exc
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary file gets the mode a plain ``open()`` would give (0666 minus the umask), not
    ``mkstemp``'s 0600, so every file the engine writes has the same permissions. Whatever happens,
    the temporary file does not outlive the block. A refused write raises :class:`StorageError`, and so
    does a file system left without a free block after the write (the file may be truncated).
    """
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or (".tmp" + path.suffix), dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the file normal permissions
    except OSError as exc:
        err = storage_error(exc, path)
        if err is None:
            raise
        raise err from exc
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            if _disk_is_full(path.parent):
                # some C writers (libsndfile) swallow ENOSPC and leave a truncated file: never rename one in
                raise StorageError(path, errno.ENOSPC)
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, path)
        except Exception as exc:  # noqa: BLE001 - re-raised, as a StorageError when the disk refused the write
            err = storage_error(exc, path)
            if err is None:
                raise
            if err.path == str(tmp_path):   # name the file being written, not its temporary stand-in
                err = StorageError(path, err.errno)
            raise err from exc
    finally:
        try:
            if tmp_path.exists():
                tmp_path.unlink()
        except OSError:
            pass   # nothing more can be done on a file system that refuses even this


@contextmanager
def atomic_folder(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out`` (the old one only then goes).

    An existing ``out`` raises ``InputError`` unless ``overwrite``. Whatever fails inside the block, the
    temporary folder is removed and ``out`` is left as it was; a refused write raises :class:`StorageError`.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise InputError(out, "output folder exists", expected="a new folder, or overwrite=True", got="existing")
    ensure_dir(out.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        err = storage_error(exc, out)
        if err is None:
            raise
        raise err from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_all(tmp: Path, data: bytes) -> None:
    """The one place bytes are written to a temporary file (tests inject disk errors here)."""
    with open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        _write_all(tmp, data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save_npz(path: str | Path, compressed: bool = True, **arrays: Any) -> None:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())
