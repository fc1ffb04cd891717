"""The window cache as a ``torch.utils.data.Dataset`` for a training loop.

Items are dicts of tensors: ``motion`` (W, 319) float32 (normalised when a :class:`Normalizer` is
given), ``music`` (W, 35), ``genre`` (index into the store's genre list), ``index`` (the window's index in
the split: ``store.window(split, index)`` has its clip, captions and beats), ``start``.
Cutting and canonicalising a window costs well under a millisecond, so a CPU loop with
``num_workers=0`` is not input-bound.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..representation.normalizer import Normalizer
from .store import WindowStore


class WindowDataset(Dataset):
    def __init__(self, store: WindowStore, split: str, normalizer: Normalizer | None = None) -> None:
        self.store = store
        self.split = split
        self.normalizer = normalizer
        self._genre_index = {g: i for i, g in enumerate(store.genres)}

    def __len__(self) -> int:
        return self.store.num_windows(self.split)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.store.window(self.split, int(i))
        motion = w.motion if self.normalizer is None else self.normalizer.normalise(w.motion)
        return {"motion": torch.from_numpy(np.ascontiguousarray(motion, dtype=np.float32)),
                "music": torch.from_numpy(w.music),
                "genre": torch.tensor(self._genre_index[w.genre], dtype=torch.long),
                "index": torch.tensor(int(i), dtype=torch.long),
                "start": torch.tensor(w.start, dtype=torch.long)}
