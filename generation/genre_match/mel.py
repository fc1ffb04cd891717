"""Log-mel spectrogram frames at the motion frame rate: the GS music style encoder's input.

FineNet (sec. 5.1) feeds AST a mel-spectrogram resized to 224 x 224; on two CPU cores we keep the
spectrogram as it is: 64 mel bands, one frame per 512-sample hop at 15,360 Hz, which is exactly one
30-fps motion frame (as ``encoders.music.features``), so a 4-s window of motion has 120 mel frames.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from encoders.music.features import FEATURE_SR, HOP


@dataclass(frozen=True)
class MelConfig:
    sr: int = FEATURE_SR
    hop: int = HOP
    n_fft: int = 1024
    n_mels: int = 64
    fmax: float = 7680.0

    def to_dict(self) -> dict:
        return asdict(self)


def log_mel(y: np.ndarray, sr: int, config: MelConfig = MelConfig(), frames: int | None = None) -> np.ndarray:
    """Mono audio -> (T, n_mels) float32 log-mel at 30 frames/s; ``frames`` pads (edge) or trims to that length."""
    import librosa

    from encoders.music.audio import resample

    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if int(sr) != config.sr:
        y = resample(y, int(sr), config.sr)
    mel = librosa.feature.melspectrogram(y=y, sr=config.sr, n_fft=config.n_fft, hop_length=config.hop,
                                         n_mels=config.n_mels, fmax=config.fmax)
    out = np.log(mel.T + 1e-6).astype(np.float32)
    return fit_frames(out, frames) if frames is not None else out


def fit_frames(x: np.ndarray, frames: int) -> np.ndarray:
    """(T, F) -> (frames, F): trimmed, or padded by repeating the last row (zeros when empty)."""
    if len(x) >= frames:
        return x[:frames]
    if len(x) == 0:
        return np.zeros((frames, x.shape[1]), dtype=np.float32)
    return np.concatenate([x, np.repeat(x[-1:], frames - len(x), axis=0)])


def mel_of_file(path: str | Path, config: MelConfig = MelConfig(), frames: int | None = None) -> np.ndarray:
    from encoders.music.audio import load_audio

    y, sr = load_audio(path, sr=config.sr)
    return log_mel(y, sr, config, frames)
