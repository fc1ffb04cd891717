"""The 35-d music features of FineDance / EDGE (and CustomDancer section 4.4), tempo and beats.

Why these features: CustomDancer's music encoder consumes the 35-d librosa features FineDance
ships with its dataset, so music we ingest ourselves (AIST++ wav, the demo ogg files, a user's
mp3) must produce the same columns, on the same 30-frames-per-second grid as the motion, or a
trained encoder sees a different input distribution than it was trained on.

The extractor follows EDGE's ``baseline_features.py`` (used by FineDance): audio resampled to
``FEATURE_SR = 30 * 512 = 15360`` Hz, every feature at hop 512, so feature frame ``i`` is
centred on time ``i / 30`` s, i.e. on motion frame ``i``. Column order::

    0        onset strength envelope  librosa.onset.onset_strength (mel spectral flux)
    1 .. 20  MFCC 1-20                 librosa.feature.mfcc(n_mfcc=20)
    21 .. 32 chroma CENS, C..B         librosa.feature.chroma_cens(n_chroma=12)
    33       onset peak one-hot        librosa.onset.onset_detect on column 0
    34       beat one-hot              librosa.beat.beat_track on column 0, tightness 100

One deliberate difference: EDGE passes a tempo estimate as ``start_bpm`` (the centre of
librosa's tempo prior) and lets ``beat_track`` re-estimate the tempo on the 30-fps envelope,
where one autocorrelation lag is 2-8 % of the tempo. We estimate the tempo once, more robustly
(:func:`estimate_tempo`: 60-fps envelope, librosa's log-normal tempo prior, sub-lag peak
interpolation) and give it to ``beat_track`` as ``bpm``, so the returned ``bpm``, ``beat_times``
and the beat column always agree with each other.

The number of rows is the number of 30-fps motion frames the audio covers,
``T = floor(duration_s * 30)`` (librosa's centred framing yields one or two more, which are
dropped), so ``features[i]`` pairs with ``motion[i]`` for a clip cut from the same start time.
"""
from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from ..atomic_io import atomic_save_npz
from ..errors import InputError
from . import MUSIC_FEATURE_DIM
from .audio import load_audio, resample

log = logging.getLogger(__name__)

FEATURE_FPS = 30
HOP = 512
FEATURE_SR = FEATURE_FPS * HOP  # 15360 Hz: one hop is exactly one 30-fps motion frame
N_MFCC = 20
N_CHROMA = 12

#: Column indices, see the module docstring.
COL_ENVELOPE = 0
COLS_MFCC = slice(1, 1 + N_MFCC)
COLS_CHROMA = slice(1 + N_MFCC, 1 + N_MFCC + N_CHROMA)
COL_PEAK = 1 + N_MFCC + N_CHROMA  # 33
COL_BEAT = COL_PEAK + 1  # 34

#: Bumped whenever the features or the tempo change, so cached entries are not reused.
FEATURE_VERSION = 1

# Tempo estimation (see estimate_tempo).
TEMPO_HOP = 256  # 60 envelope frames per second at FEATURE_SR: twice the lag resolution of HOP
TEMPO_PRIOR_BPM = 120.0  # librosa's default prior centre ...
TEMPO_PRIOR_STD_OCTAVES = 1.0  # ... and width
TEMPO_MIN_BPM = 30.0
TEMPO_MAX_BPM = 300.0
TEMPO_AC_SECONDS = 8.0  # autocorrelation window, librosa's ac_size
TEMPO_WINDOW_STRIDE_S = 0.25  # windows every 0.25 s instead of every frame: same mean, 15x less memory

BEAT_EDGE_PAD_FRAMES = FEATURE_FPS  # see _beats

# chroma_cens' lowest CQT octave is computed on a signal decimated 64x with a 512-point FFT, so
# shorter inputs trigger librosa warnings; shorter signals are zero-padded at the end (which is
# what librosa's constant padding does anyway) and the extra rows dropped.
_MIN_SAMPLES = 512 * 64 + HOP


@dataclass(frozen=True, eq=False)
class MusicAnalysis:
    """Everything DanceSearch derives from one piece of audio.

    ``features``: (T, 35) float32, T = floor(duration_s * 30), see the module docstring.
    ``bpm``: global tempo in beats per minute, 0.0 when the audio has no pulse (silence).
    ``beat_times``: (B,) float64 seconds, multiples of 1/30 (the rows where column 34 is 1).
    ``duration_s``: duration of the analysed signal in seconds.
    """

    features: np.ndarray
    bpm: float
    beat_times: np.ndarray
    duration_s: float

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])


def _as_mono(y: np.ndarray, sr: int) -> np.ndarray:
    """Validate in-memory audio and downmix (channels, n) to (n,) as librosa does."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise InputError(None, "bad audio array", field="audio", expected="(n,) or (channels, n)", got=str(y.shape))
    if y.size == 0:
        raise InputError(None, "audio holds no samples", field="audio", expected="n > 0", got="0 samples")
    if not np.isfinite(y).all():
        raise InputError(None, "audio contains NaN or infinite values", field="audio")
    if int(sr) != sr or sr <= 0:
        raise InputError(None, "bad sample rate", field="sr", expected="a positive integer", got=repr(sr))
    return y


def num_motion_frames(num_samples: int, sr: int) -> int:
    """floor(duration * 30) computed exactly in integers: the motion frames a signal covers."""
    return (int(num_samples) * FEATURE_FPS) // int(sr)


def _prepare(y: np.ndarray, sr: int) -> tuple[np.ndarray, int, float]:
    """Mono signal at FEATURE_SR (padded to the CQT minimum), T, and the duration in seconds."""
    y = _as_mono(y, sr)
    t = num_motion_frames(y.size, int(sr))
    y15 = resample(y, int(sr), FEATURE_SR)
    if y15.size < _MIN_SAMPLES:
        y15 = np.pad(y15, (0, _MIN_SAMPLES - y15.size))
    return y15, t, y.size / float(sr)


def _envelope(y15: np.ndarray, hop: int = HOP) -> np.ndarray:
    return librosa.onset.onset_strength(y=y15, sr=FEATURE_SR, hop_length=hop).astype(np.float64)


def estimate_tempo(y15: np.ndarray) -> float:
    """Global tempo (BPM) of a FEATURE_SR signal; 0.0 when it has no onsets at all.

    librosa's tempo estimator, made sturdier for real recordings: the onset envelope is taken
    at hop 256 (60 fps) instead of 512, the autocorrelation tempogram (8-s Hann windows, each
    normalised by its lag-0 value) is averaged over windows every 0.25 s, weighted by librosa's
    log-normal prior (centre 120 BPM, one octave standard deviation: this is what picks the
    octave, e.g. 136 rather than 68 BPM), and the winning lag is refined by parabolic
    interpolation, so the estimate is not quantised to whole lags (about 2 % at 150 BPM).
    """
    env = _envelope(y15, TEMPO_HOP)
    if not np.any(env > 1e-10):
        return 0.0
    fps = FEATURE_SR / TEMPO_HOP
    win = int(round(TEMPO_AC_SECONDS * fps))
    stride = max(1, int(round(TEMPO_WINDOW_STRIDE_S * fps)))
    # centred windows as librosa.feature.tempogram, ramped to zero at both ends
    padded = np.pad(env, (win // 2, win // 2), mode="linear_ramp", end_values=(0, 0))
    frames = librosa.util.frame(padded, frame_length=win, hop_length=stride, axis=0)  # (n_windows, win)
    frames = frames * np.hanning(win)[None, :]
    spec = np.fft.rfft(frames, n=2 * win, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, n=2 * win, axis=1)[:, :win]
    lag0 = acf[:, :1]
    acf = np.divide(acf, lag0, out=np.zeros_like(acf), where=lag0 > 1e-12)
    tg = acf.mean(axis=0)

    lags = np.arange(win, dtype=np.float64)
    with np.errstate(divide="ignore"):
        bpms = np.where(lags > 0, 60.0 * fps / np.maximum(lags, 1e-9), np.inf)
    valid = (bpms >= TEMPO_MIN_BPM) & (bpms <= TEMPO_MAX_BPM)
    logprior = -0.5 * ((np.log2(np.where(valid, bpms, 1.0)) - np.log2(TEMPO_PRIOR_BPM)) / TEMPO_PRIOR_STD_OCTAVES) ** 2
    score = np.full(win, -np.inf)
    score[valid] = np.log1p(1e6 * np.maximum(tg[valid], 0.0)) + logprior[valid]  # librosa's weighting
    k = int(np.argmax(score))
    if not np.isfinite(score[k]) or tg[k] <= 0:
        return 0.0
    lag = float(k)
    if 0 < k < win - 1 and valid[k - 1] and valid[k + 1]:
        a, b, c = score[k - 1], score[k], score[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            lag = k + 0.5 * (a - c) / denom
    return float(60.0 * fps / lag)


def _beats(envelope: np.ndarray, bpm: float) -> np.ndarray:
    """Beat frames (at 30 fps) of the feature envelope for a known tempo.

    The envelope is padded with one second of zeros on both sides before tracking: librosa's
    dynamic programme otherwise anchors its last beat on the final frame and squeezes the beats
    before it (a click track ending 0.3 s after its last click got beats 2-3 frames early), and
    ``trim`` drops a first beat that falls in the first half period. In the padding those edge
    effects hit silence, where ``trim`` removes them; beats outside the real signal are dropped.
    """
    if bpm <= 0 or not np.any(envelope > 1e-10):
        return np.zeros(0, dtype=np.int64)
    pad = BEAT_EDGE_PAD_FRAMES
    padded = np.pad(envelope, (pad, pad))
    _, frames = librosa.beat.beat_track(onset_envelope=padded, sr=FEATURE_SR, hop_length=HOP,
                                        bpm=float(bpm), tightness=100, units="frames")
    frames = np.asarray(frames, dtype=np.int64) - pad
    return frames[(frames >= 0) & (frames < len(envelope))]


def _fit_rows(feats: np.ndarray, t: int) -> np.ndarray:
    """Truncate, or pad by repeating the last row (one-hot columns padded with zeros), to t rows."""
    if feats.shape[0] >= t:
        return feats[:t]
    n = feats.shape[0]
    out = np.pad(feats, ((0, t - n), (0, 0)), mode="edge") if n else np.zeros((t, feats.shape[1]), feats.dtype)
    out[n:, COL_PEAK] = 0.0
    out[n:, COL_BEAT] = 0.0
    return out


def beat_times(features: np.ndarray) -> np.ndarray:
    """Seconds of the beats marked in the beat column of (T, 35) features (the frames ``analyse_signal`` set)."""
    return np.nonzero(np.asarray(features)[:, COL_BEAT] > 0.5)[0] / FEATURE_FPS


def analyse_signal(y: np.ndarray, sr: int) -> MusicAnalysis:
    """Features, tempo and beats of in-memory audio ``y`` ((n,) or (channels, n)) at rate ``sr``."""
    y15, t, duration_s = _prepare(y, sr)
    env = _envelope(y15)
    with warnings.catch_warnings():
        # librosa warns on all-zero input (silence is valid: its features are constant)
        warnings.simplefilter("ignore", UserWarning)
        mfcc = librosa.feature.mfcc(y=y15, sr=FEATURE_SR, n_mfcc=N_MFCC, hop_length=HOP).T
        chroma = librosa.feature.chroma_cens(y=y15, sr=FEATURE_SR, hop_length=HOP, n_chroma=N_CHROMA).T
    n = min(len(env), len(mfcc), len(chroma))
    peaks = librosa.onset.onset_detect(onset_envelope=env, sr=FEATURE_SR, hop_length=HOP, units="frames") \
        if np.any(env > 1e-10) else np.zeros(0, dtype=np.int64)
    bpm = estimate_tempo(y15)
    beats = _beats(env, bpm)

    feats = np.zeros((n, MUSIC_FEATURE_DIM), dtype=np.float32)
    feats[:, COL_ENVELOPE] = env[:n]
    feats[:, COLS_MFCC] = mfcc[:n]
    feats[:, COLS_CHROMA] = chroma[:n]
    feats[peaks[peaks < n], COL_PEAK] = 1.0
    feats[beats[beats < n], COL_BEAT] = 1.0
    feats = np.ascontiguousarray(_fit_rows(feats, t), dtype=np.float32)
    beats = beats[beats < t]
    return MusicAnalysis(features=feats, bpm=float(bpm), beat_times=beats.astype(np.float64) / FEATURE_FPS,
                         duration_s=float(duration_s))


def music_features(y: np.ndarray, sr: int) -> np.ndarray:
    """(floor(duration*30), 35) float32 FineDance / EDGE music features of ``y`` at rate ``sr``."""
    return analyse_signal(y, sr).features


def tempo_and_beats(y: np.ndarray, sr: int) -> tuple[float, np.ndarray]:
    """Global tempo in BPM (0.0 for pulseless audio) and beat times in seconds (multiples of 1/30).

    The same beats as column 34 of :func:`music_features`, without the MFCC / chroma cost.
    """
    y15, t, _ = _prepare(y, sr)
    bpm = estimate_tempo(y15)
    beats = _beats(_envelope(y15), bpm)
    beats = beats[beats < t]
    return float(bpm), beats.astype(np.float64) / FEATURE_FPS


# ---------------------------------------------------------------------------------------------
# on-disk cache

def feature_params(max_seconds: float | None = None) -> dict:
    """Everything besides the audio bytes that determines an analysis; part of the cache key."""
    major_minor = ".".join(librosa.__version__.split(".")[:2])
    return {"version": FEATURE_VERSION, "sr": FEATURE_SR, "hop": HOP, "dim": MUSIC_FEATURE_DIM,
            "tempo": [TEMPO_HOP, TEMPO_PRIOR_BPM, TEMPO_PRIOR_STD_OCTAVES, TEMPO_AC_SECONDS],
            "beat_pad": BEAT_EDGE_PAD_FRAMES,
            "librosa": major_minor, "max_seconds": max_seconds}


def cache_key(path: str | Path, max_seconds: float | None = None) -> str:
    """sha1 of the file's bytes and the feature parameters: renamed or moved files still hit,
    an edited file or a new extractor version misses."""
    path = Path(path)
    h = hashlib.sha1()
    h.update(json.dumps(feature_params(max_seconds), sort_keys=True).encode())
    h.update(b"\0")
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        raise InputError(path, "audio file not found") from None
    except IsADirectoryError:
        raise InputError(path, "not a regular file", expected="an audio file", got="a directory") from None
    except OSError as err:
        raise InputError(path, f"cannot read audio file: {err.strerror or err}") from err
    return h.hexdigest()


def _read_cache(entry: Path, params: dict) -> MusicAnalysis | None:
    """The cached analysis, or None when the entry is absent, corrupt or from other parameters."""
    if not entry.is_file():
        return None
    try:
        with np.load(entry, allow_pickle=False) as z:
            if json.loads(str(z["params"])) != json.loads(json.dumps(params)):
                raise ValueError("parameters differ")
            feats = np.asarray(z["features"])
            beat_times = np.asarray(z["beat_times"], dtype=np.float64)
            bpm = float(z["bpm"])
            duration_s = float(z["duration_s"])
        if feats.dtype != np.float32 or feats.ndim != 2 or feats.shape[1] != MUSIC_FEATURE_DIM:
            raise ValueError(f"bad features {feats.dtype} {feats.shape}")
        if not (np.isfinite(feats).all() and np.isfinite(beat_times).all() and np.isfinite(bpm)):
            raise ValueError("non-finite values")
        if beat_times.ndim != 1 or feats.shape[0] != int(np.floor(duration_s * FEATURE_FPS + 1e-6)):
            raise ValueError("inconsistent shapes")
        return MusicAnalysis(features=feats, bpm=bpm, beat_times=beat_times, duration_s=duration_s)
    except Exception as err:  # any damage (truncated zip, garbage, wrong keys) means: recompute
        log.warning("music feature cache entry %s is unusable (%s); recomputing", entry, err)
        return None


def analyse_file(path: str | Path, cache_dir: str | Path | None = None,
                 max_seconds: float | None = None) -> MusicAnalysis:
    """Analyse an audio file, through the on-disk cache when ``cache_dir`` is given.

    Cache entries are ``cache_dir/<sha1>.npz`` with :func:`cache_key` (file content + feature
    parameters); they are written atomically, and an unreadable entry is recomputed and
    rewritten rather than failing the caller. ``max_seconds`` analyses only the start of the
    file (``duration_s`` is then that of the analysed part).

    Raises:
        InputError: missing, unreadable, corrupt or empty audio file.
    """
    path = Path(path)
    if cache_dir is None:
        y, sr = load_audio(path, duration=max_seconds)
        return analyse_signal(y, sr)
    params = feature_params(max_seconds)
    entry = Path(cache_dir) / f"{cache_key(path, max_seconds)}.npz"
    cached = _read_cache(entry, params)
    if cached is not None:
        return cached
    y, sr = load_audio(path, duration=max_seconds)
    result = analyse_signal(y, sr)
    atomic_save_npz(entry, features=result.features, bpm=np.float64(result.bpm), beat_times=result.beat_times,
                    duration_s=np.float64(result.duration_s), params=np.array(json.dumps(params, sort_keys=True)))
    return result


#: The ARCHITECTURE.md name of :func:`analyse_file`.
extract_file = analyse_file
