"""Audio decoding, writing and slicing for the music side of DanceSearch.

Why this module exists: every source (FineDance wav, AIST++ wav, the demo corpus' ogg / mp3)
must reach the feature extractor as one mono float32 signal at a known rate, and every clip's
audio segment written to the workspace must be written atomically (a killed ingest never leaves
half an .ogg). Bad input (missing, unreadable, corrupt, zero-length files) is reported as
:class:`encoders.errors.InputError` naming the file, never as a decoder traceback. Silence is
valid audio and is returned as zeros.

Decoding goes through libsndfile (``soundfile``: wav, ogg vorbis / opus, flac, mp3 with
libsndfile >= 1.1) and falls back to librosa's audioread path (ffmpeg / gstreamer when a system
has them) for any other container. Resampling uses soxr (``soxr_hq``), librosa's default, so
features computed here match features computed by ``librosa.load(path, sr=...)``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from ..atomic_io import atomic_path
from ..errors import InputError

#: Formats :func:`write_audio` can produce, mapped to (libsndfile format, subtype).
#: PCM_16 for wav / flac: the clips are for playback in browsers, where 16-bit PCM is universal.
WRITE_FORMATS: dict[str, tuple[str, str]] = {
    "ogg": ("OGG", "VORBIS"),
    "flac": ("FLAC", "PCM_16"),
    "wav": ("WAV", "PCM_16"),
}

RESAMPLE_TYPE = "soxr_hq"


def _decode_soundfile(path: Path, duration: float | None) -> tuple[np.ndarray, int]:
    """Decode with libsndfile; returns (samples, channels) float32 and the native rate."""
    with sf.SoundFile(str(path)) as fh:
        native_sr = int(fh.samplerate)
        frames = -1 if duration is None else max(0, int(round(duration * native_sr)))
        data = fh.read(frames=frames, dtype="float32", always_2d=True)
    return data, native_sr


def _decode_fallback(path: Path, duration: float | None) -> tuple[np.ndarray, int]:
    """Decode with librosa's audioread fallback (formats libsndfile cannot read, e.g. m4a)."""
    import librosa  # local: importing librosa costs ~1 s and is not needed on the soundfile path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns that audioread is deprecated; we know
        y, native_sr = librosa.load(str(path), sr=None, mono=False, duration=duration)
    y = np.asarray(y, dtype=np.float32)
    data = y[:, None] if y.ndim == 1 else y.T
    return data, int(native_sr)


def _sf_reason(err: Exception) -> str:
    """libsndfile's reason without the path; its 'does not exist or is not a regular file'
    (SF_ERR_SYSTEM) is what it says of an existing file it cannot parse, so say that instead."""
    reason = str(getattr(err, "error_string", err)).strip().rstrip(".")
    if getattr(err, "code", None) == 7:  # the path was checked to be an existing regular file
        reason = "data not recognised"
    return reason


def load_audio(path: str | Path, sr: int | None = None, mono: bool = True,
               duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 samples in [-1, 1].

    Args:
        path: wav / ogg / flac / mp3 (anything libsndfile reads), other containers via audioread.
        sr: target sample rate; ``None`` keeps the file's native rate.
        mono: average the channels (librosa's convention) and return shape ``(n,)``; with
            ``mono=False`` the shape is ``(channels, n)``, again librosa's convention.
        duration: decode only the first ``duration`` seconds (long files in tests and benches).

    Returns:
        ``(y, sr)`` with ``y`` float32 and ``sr`` the rate of ``y``.

    Raises:
        InputError: the file is missing, is not a file, cannot be decoded, holds zero samples or
        decodes to NaN / infinite values.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "audio file not found")
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "a special file"
        raise InputError(path, "not a regular file", expected="an audio file", got=kind)
    if path.stat().st_size == 0:
        raise InputError(path, "audio file is empty", expected="audio samples", got="0 bytes")
    if sr is not None and (int(sr) != sr or sr <= 0):
        raise ValueError(f"sample rate must be a positive integer, got {sr!r}")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be positive, got {duration!r}")

    try:
        data, native_sr = _decode_soundfile(path, duration)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_err:
        try:
            data, native_sr = _decode_fallback(path, duration)
        except Exception as fb_err:  # audioread raises many unrelated types (NoBackendError, EOFError...)
            raise InputError(path, "cannot decode audio (unrecognised format or corrupt data)",
                             expected="a readable audio file (wav, ogg, flac, mp3)",
                             got=f"libsndfile: {_sf_reason(sf_err)}; audioread: "
                                 f"{type(fb_err).__name__} {fb_err}".rstrip()) from fb_err

    if data.shape[0] == 0:
        raise InputError(path, "audio file holds no samples", expected="at least one sample", got="0 samples")
    if not np.isfinite(data).all():
        raise InputError(path, "decoded audio contains NaN or infinite values (corrupt file?)")

    y = data.mean(axis=1) if mono else np.ascontiguousarray(data.T)
    y = y.astype(np.float32, copy=False)
    if sr is not None and int(sr) != native_sr:
        y = resample(y, native_sr, int(sr))
        native_sr = int(sr)
    return y, int(native_sr)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr (librosa's default quality), returning float32."""
    if int(orig_sr) == int(target_sr):
        return np.asarray(y, dtype=np.float32)
    import librosa

    out = librosa.resample(np.asarray(y, dtype=np.float32), orig_sr=int(orig_sr), target_sr=int(target_sr),
                           res_type=RESAMPLE_TYPE, axis=-1)
    return np.asarray(out, dtype=np.float32)


def _infer_format(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
    else:
        fmt = path.suffix.lower().lstrip(".") or "ogg"
        fmt = {"oga": "ogg", "wave": "wav"}.get(fmt, fmt)
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"unsupported audio format {fmt!r}; choose one of {sorted(WRITE_FORMATS)}")
    return fmt


def write_audio(path: str | Path, y: np.ndarray, sr: int, format: str | None = None) -> Path:
    """Write ``y`` to ``path`` atomically as ogg (Vorbis), flac or wav (16-bit PCM).

    ``y`` is ``(n,)`` mono or ``(channels, n)`` (librosa's layout); values are clipped to
    [-1, 1] because the encoders would otherwise wrap or clip unpredictably. ``format``
    defaults to the path's extension, and to ogg when it has none. The samples go to a temporary
    file with the format's extension beside ``path``, which then replaces ``path`` in one rename,
    so a reader never sees a half-written clip.
    """
    path = Path(path)
    fmt = _infer_format(path, format)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise ValueError(f"audio must be (n,) or (channels, n) with n > 0, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("audio contains NaN or infinite values")
    if int(sr) != sr or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sr!r}")
    data = np.clip(y if y.ndim == 1 else y.T, -1.0, 1.0)
    sf_format, subtype = WRITE_FORMATS[fmt]
    with atomic_path(path, suffix=f".tmp.{fmt}") as tmp:
        sf.write(str(tmp), data, int(sr), format=sf_format, subtype=subtype)
    return path


def write_audio_segment(y: np.ndarray, sr: int, path: str | Path, format: str | None = None) -> Path:
    """The ARCHITECTURE.md spelling of :func:`write_audio` (signal first, path last)."""
    return write_audio(path, y, sr, format=format)


def audio_segment(y: np.ndarray, sr: int, start_s: float, end_s: float) -> np.ndarray:
    """Samples of ``y`` between ``start_s`` and ``end_s`` seconds (last axis; a view, not a copy).

    Sample indices are ``round(t * sr)``, so a 12-s clip at 30 fps frame ``a`` starts at exactly
    the sample its motion frame ``a`` shows. A range past the end of the signal is cut at the
    end (the returned segment is then shorter than asked); a negative start is an error, as is
    ``end_s < start_s``.
    """
    if start_s < 0:
        raise ValueError(f"start_s must be >= 0, got {start_s}")
    if end_s < start_s:
        raise ValueError(f"end_s ({end_s}) is before start_s ({start_s})")
    n = y.shape[-1]
    a = min(n, int(round(start_s * sr)))
    b = min(n, int(round(end_s * sr)))
    return y[..., a:b]
