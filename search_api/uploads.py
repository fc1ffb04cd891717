"""Uploaded files (audio for ``POST /v1/generate``, a reference photo for ``POST /v1/videos``): a streaming
multipart reader and the checks of the file.

Nothing is written outside the workspace: the multipart body is parsed as it arrives (python-multipart's
``MultipartParser``, not Starlette's ``request.form()``, whose spooled files go to the system temp folder),
form fields are kept in memory (small, bounded) and the one file part is streamed into
``HOME/uploads/.incoming/`` (a temporary name; the job manager renames it into ``HOME/uploads/<job>/``
when the job is accepted, and it is deleted when the job ends). The whole body is bounded before this
code runs (``search_api.limits``, ``DANCESEARCH_MAX_UPLOAD_BYTES``).

Checks, each a 4xx naming the problem (:class:`UploadError`): the request's and the file part's content
type (415), a malformed body or too many / too large fields (400), an empty file, a file that does not
decode as audio, silent audio, or music shorter than one 4-s generator window (422).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np

from encoders.atomic_io import ensure_dir, storage_error
from encoders.errors import DanceSearchError, InputError

MAX_FIELDS = 16
MAX_FIELD_BYTES = 8 * 1024
FILE_FIELD = "audio"
AUDIO_SUFFIXES = {".wav", ".ogg", ".oga", ".mp3", ".flac", ".m4a", ".opus", ".aiff", ".aif"}
AUDIO_CONTENT_TYPES = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
                       "audio/ogg": ".ogg", "audio/vorbis": ".ogg", "audio/opus": ".opus", "audio/mpeg": ".mp3",
                       "audio/mp3": ".mp3", "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/mp4": ".m4a",
                       "audio/x-m4a": ".m4a", "audio/aiff": ".aiff", "audio/x-aiff": ".aiff"}
GENERIC_TYPES = {"application/octet-stream", ""}   # browsers and curl send these for unknown files: decode decides
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
IMAGE_CONTENT_TYPES = {"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/pjpeg": ".jpg", "image/png": ".png",
                       "image/webp": ".webp", "image/bmp": ".bmp", "image/x-ms-bmp": ".bmp"}


@dataclass(frozen=True)
class FileKind:
    """What one route's file part may be: its form field, the suffixes and content types it accepts."""

    field: str
    noun: str                       # "audio file", "photo" (in messages)
    suffixes: frozenset[str]
    content_types: dict[str, str]   # content type -> suffix
    type_prefix: str                # any "<prefix>/..." content type is accepted too ("audio", "image")
    examples: str                   # the types named in a 415


AUDIO_FILE = FileKind(FILE_FIELD, "audio file", frozenset(AUDIO_SUFFIXES), AUDIO_CONTENT_TYPES, "audio",
                      "audio/wav, audio/ogg, audio/mpeg, audio/flac, ...")
PHOTO_FILE = FileKind("photo", "photo", frozenset(IMAGE_SUFFIXES), IMAGE_CONTENT_TYPES, "image",
                      "image/jpeg, image/png, image/webp")
SILENCE_PEAK = 1e-4


class UploadError(DanceSearchError):
    """A bad upload: ``status`` (400 / 413 / 415 / 422), ``code``, ``field``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = FILE_FIELD) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


@dataclass
class Upload:
    path: Path                 # inside HOME/uploads/.incoming until the job takes it
    filename: str
    content_type: str
    size: int
    sha1: str
    duration_s: float = 0.0
    sample_rate: int = 0

    def describe(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_type": self.content_type, "bytes": self.size, "sha1": self.sha1,
                "duration_s": round(self.duration_s, 3)}

    def discard(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)
    fh: Any = None
    path: Path | None = None
    size: int = 0


def _suffix(filename: str, content_type: str, kind: FileKind = AUDIO_FILE) -> str:
    ext = Path(filename).suffix.lower()
    if ext in kind.suffixes:
        return ext
    return kind.content_types.get(content_type, ".bin")


async def read_multipart(content_type_header: str, stream: AsyncIterator[bytes], incoming: Path,
                         kind: FileKind = AUDIO_FILE) -> tuple[dict[str, str], Upload | None]:
    """Parse a multipart/form-data body: (text fields, the file part ``kind.field`` or None)."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type_header)
    boundary = options.get(b"boundary")
    if not boundary:
        raise UploadError(400, "malformed_multipart", "the multipart/form-data request has no boundary", "body")
    fields: dict[str, str] = {}
    upload: list[Upload] = []
    state: dict[str, Any] = {"part": None, "hname": b"", "hvalue": b"", "error": None, "sha1": None}

    def fail(err: UploadError) -> None:
        if state["error"] is None:
            state["error"] = err

    def on_part_begin() -> None:
        state["part"] = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hvalue"] += data[start:end]

    def on_header_end() -> None:
        part: _Part = state["part"]
        part.headers[state["hname"].decode("latin-1").lower()] = state["hvalue"].decode("latin-1")
        state["hname"], state["hvalue"] = b"", b""

    def on_headers_finished() -> None:
        part: _Part = state["part"]
        _, disp = parse_options_header(part.headers.get("content-disposition", ""))
        name = disp.get(b"name")
        part.name = name.decode("utf-8", "replace") if name is not None else None
        fname = disp.get(b"filename")
        part.filename = fname.decode("utf-8", "replace") if fname is not None else None
        ctype, _ = parse_options_header(part.headers.get("content-type", ""))
        part.content_type = ctype.decode("latin-1").lower()
        if part.name is None:
            fail(UploadError(400, "malformed_multipart", "a form part has no name", "body"))
            return
        if part.filename is not None or part.name == kind.field:
            if part.name != kind.field:
                fail(UploadError(422, "invalid_parameter", f"unexpected file field {part.name!r}: the {kind.noun} "
                                                           f"goes in the field {kind.field!r}", part.name))
                return
            if upload or part.fh is not None:
                fail(UploadError(422, "invalid_parameter", f"more than one {kind.noun}: send one", kind.field))
                return
            if part.content_type not in kind.content_types and part.content_type not in GENERIC_TYPES \
                    and not part.content_type.startswith(kind.type_prefix + "/"):
                fail(UploadError(415, "unsupported_media_type",
                                 f"the {kind.noun}'s content type is {part.content_type!r}; expected "
                                 f"{kind.examples} or application/octet-stream", kind.field))
                return
            try:
                ensure_dir(incoming)
                fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=_suffix(part.filename or "", part.content_type,
                                                                            kind), dir=incoming)
            except OSError as exc:
                raise (storage_error(exc, incoming) or exc) from exc
            part.fh, part.path = os.fdopen(fd, "wb"), Path(tmp)
            state["sha1"] = hashlib.sha1()
        elif len(fields) >= MAX_FIELDS:
            fail(UploadError(400, "too_many_fields", f"more than {MAX_FIELDS} form fields", "body"))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part: _Part = state["part"]
        if state["error"] is not None:
            return
        chunk = data[start:end]
        if part.fh is not None:
            part.fh.write(chunk)
            part.size += len(chunk)
            state["sha1"].update(chunk)
        else:
            part.data += chunk
            if len(part.data) > MAX_FIELD_BYTES:
                fail(UploadError(400, "field_too_large", f"the form field {part.name!r} is longer than "
                                                         f"{MAX_FIELD_BYTES} bytes", part.name))

    def on_part_end() -> None:
        part: _Part = state["part"]
        if part.fh is not None:
            part.fh.close()
            if state["error"] is not None:
                part.path.unlink(missing_ok=True)
                return
            upload.append(Upload(part.path, Path(part.filename or kind.field).name[:200], part.content_type or
                                 "application/octet-stream", part.size, state["sha1"].hexdigest()))
            part.fh = None
        elif state["error"] is None and part.name is not None:
            try:
                fields[part.name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                fail(UploadError(400, "malformed_multipart", f"the form field {part.name!r} is not UTF-8 text",
                                 part.name))

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
                                        "on_part_end": on_part_end})
    try:
        async for chunk in stream:
            if chunk:
                parser.write(chunk)
            if state["error"] is not None:
                break
        if state["error"] is None:
            parser.finalize()
    except UploadError:
        raise
    except DanceSearchError:
        raise
    except Exception as exc:  # noqa: BLE001 - python-multipart's parse errors, a client that went away
        fail(UploadError(400, "malformed_multipart", f"the multipart/form-data body cannot be parsed: {exc}", "body"))
    finally:
        part = state["part"]
        if part is not None and part.fh is not None:      # the body ended inside the file part
            part.fh.close()
            part.path.unlink(missing_ok=True)
            if state["error"] is None:
                fail(UploadError(400, "malformed_multipart", "the multipart/form-data body ended inside the file",
                                 "body"))
    if state["error"] is not None:
        for u in upload:
            u.discard()
        raise state["error"]
    return fields, (upload[0] if upload else None)


async def read_request_fields(request: Any, model: Any, route: str, incoming: Path,
                              kind: FileKind = AUDIO_FILE) -> tuple[Any, Upload | None]:
    """The fields of a JSON or multipart/form-data request validated as pydantic ``model``, and its file part.

    ``UploadError`` for a malformed body (400), a body that is not a JSON object or a field ``model`` refuses
    (422, naming the field), or another content type (415, naming ``route``). On an error the file part is
    deleted; otherwise the caller owns it.
    """
    from pydantic import ValidationError

    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    upload: Upload | None = None
    if media_type == "application/json":
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise UploadError(400, "malformed_json", f"the request body is not valid JSON: {exc}", "body") from exc
        if not isinstance(data, dict):
            raise UploadError(422, "invalid_parameter", "the body must be a JSON object", "body")
    elif media_type == "multipart/form-data":
        data, upload = await read_multipart(request.headers["content-type"], request.stream(), incoming, kind)
    else:
        given = media_type or "no content type"
        raise UploadError(415, "unsupported_media_type", f"{route} takes application/json or multipart/form-data, "
                                                         f"not {given}", "body")
    try:
        return model.model_validate(data), upload
    except ValidationError as exc:
        if upload is not None:
            upload.discard()
        first = exc.errors()[0]
        names = [str(p) for p in first.get("loc", ()) if isinstance(p, str)]
        field = names[0] if names else "body"
        raise UploadError(422, "invalid_parameter", f"{field}: {first.get('msg')}", field) from exc


def check_audio(upload: Upload, min_seconds: float) -> Upload:
    """Decode the uploaded file (it must be audio, not silent, at least ``min_seconds`` long); fills in its
    duration and rate. Raises UploadError (422) naming the problem."""
    from encoders.music.audio import load_audio

    if upload.size == 0:
        raise UploadError(422, "invalid_audio", f"the uploaded file {upload.filename!r} is empty")
    try:
        y, sr = load_audio(upload.path)
    except InputError as exc:
        detail = exc.reason + (f" (expected {exc.expected}, got {exc.got})" if exc.expected or exc.got else "")
        raise UploadError(422, "invalid_audio", f"the uploaded file {upload.filename!r} is not readable audio: "
                                                f"{detail}") from exc
    except Exception as exc:  # noqa: BLE001 - decoders raise many things for hostile files
        raise UploadError(422, "invalid_audio", f"the uploaded file {upload.filename!r} is not readable audio: "
                                                f"{type(exc).__name__}") from exc
    duration = float(y.shape[-1]) / float(sr) if sr else 0.0
    if duration < min_seconds:
        raise UploadError(422, "audio_too_short", f"the uploaded music is {duration:.2f} s long; the generator "
                                                  f"needs at least {min_seconds:g} s (one window)")
    if not np.isfinite(y).all() or float(np.abs(y).max(initial=0.0)) < SILENCE_PEAK:
        raise UploadError(422, "silent_audio", f"the uploaded music {upload.filename!r} is silent")
    upload.duration_s, upload.sample_rate = duration, int(sr)
    return upload
