"""Per-dimension feature statistics, fitted on the training windows and saved with a model.

Why a file of its own: a generator's weights only make sense with the statistics it was trained
under, and a model trained on another representation must be refused, not silently mis-scaled. The
file records the representation id and a format version; loading checks both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from encoders.atomic_io import atomic_save_npz
from encoders.errors import InputError

from .layout import FEATURE_DIM, REPRESENTATION_ID

NORMALIZER_FORMAT = 1
DEFAULT_MIN_STD = 0.01
"""Floor on a dimension's std. Why: near-constant dimensions (hands at rest in AIST++, a contact that
never changes) would otherwise be divided by ~0, and a denoiser's loss would be dominated by them."""


@dataclass
class Normalizer:
    """``normalise(x) = (x - mean) / std`` per dimension; ``count`` frames were seen when fitting."""

    mean: np.ndarray
    std: np.ndarray
    count: int
    representation: str = REPRESENTATION_ID
    min_std: float = DEFAULT_MIN_STD

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float32).reshape(-1)
        if self.mean.shape != (FEATURE_DIM,) or self.std.shape != (FEATURE_DIM,):
            raise InputError(None, "normaliser statistics have the wrong size", field="mean/std",
                             expected=f"({FEATURE_DIM},)", got=f"{self.mean.shape} / {self.std.shape}")

    @classmethod
    def fit(cls, chunks: Iterable[np.ndarray], min_std: float = DEFAULT_MIN_STD) -> "Normalizer":
        """Statistics over every frame of ``chunks`` ((..., 319) arrays), in float64 with one pass (sums)."""
        total = np.zeros(FEATURE_DIM)
        total_sq = np.zeros(FEATURE_DIM)
        count = 0
        for chunk in chunks:
            x = np.asarray(chunk, dtype=np.float64).reshape(-1, FEATURE_DIM)
            total += x.sum(axis=0)
            total_sq += np.square(x).sum(axis=0)
            count += len(x)
        if count == 0:
            raise InputError(None, "no training frames to fit the normaliser on", field="windows",
                             expected="at least one window", got="0")
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        return cls(mean, np.maximum(np.sqrt(var), min_std), count, REPRESENTATION_ID, min_std)

    def normalise(self, x):
        return (x - self._like(self.mean, x)) / self._like(self.std, x)

    def denormalise(self, x):
        return x * self._like(self.std, x) + self._like(self.mean, x)

    @staticmethod
    def _like(v: np.ndarray, x):
        if isinstance(x, np.ndarray):
            return v.astype(x.dtype, copy=False)
        import torch

        return torch.as_tensor(v, dtype=x.dtype, device=x.device)

    def save(self, path: str | Path) -> None:
        atomic_save_npz(path, format=np.int64(NORMALIZER_FORMAT), representation=np.asarray(self.representation),
                        mean=self.mean, std=self.std, count=np.int64(self.count), min_std=np.float64(self.min_std))

    @classmethod
    def load(cls, path: str | Path) -> "Normalizer":
        try:
            with np.load(path, allow_pickle=False) as z:
                fmt = int(z["format"])
                rep = str(z["representation"])
                data = {k: z[k] for k in ("mean", "std", "count", "min_std")}
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(path, f"cannot read normaliser: {exc}") from exc
        if fmt != NORMALIZER_FORMAT:
            raise InputError(path, "unsupported normaliser format", field="format", expected=str(NORMALIZER_FORMAT),
                             got=str(fmt))
        if rep != REPRESENTATION_ID:
            raise InputError(path, "made for another motion representation", field="representation",
                             expected=REPRESENTATION_ID, got=rep)
        try:
            return cls(data["mean"], data["std"], int(data["count"]), rep, float(data["min_std"]))
        except InputError as exc:
            raise InputError(path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from exc
