"""Training and evaluation pairs for the GS network: catalog windows with their audio's log-mel frames.

Each 4-s window of a split (``generation.windows``) gives one (mel window, dance window, genre) triple:
the mel comes from the clip's own audio file (``Clip.audio_path``; clips without audio are skipped), the
dance is the window's canonical motion decoded to joint positions (forward kinematics). Pairs for the
cosine loss are formed inside each batch (every music with every dance), matched when the genres agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..representation.codec import decode
from ..windows import WindowStore
from .mel import MelConfig, fit_frames, mel_of_file
from .model import dance_input


@dataclass
class GSData:
    mel: np.ndarray          # (N, W, n_mels) float32
    dance: np.ndarray        # (N, 6, W', 22) float32 network input
    genre: np.ndarray        # (N,) int64 index into ``genres``
    genres: list[str]
    clip_ids: list
    starts: list[int]

    def __len__(self) -> int:
        return len(self.genre)


def clip_mels(home: Path | str, clip_ids: set, config: MelConfig = MelConfig(), db_url: str | None = None,
              progress: bool = False) -> dict:
    """{clip id: (T, n_mels) log-mel of the clip's audio} for the clips that have audio."""
    from indexer.workspace import Workspace

    ws = Workspace(Path(home), db_url)
    rows = ws.catalog(create=False).clips(ids=sorted(int(c) for c in clip_ids))
    out = {}
    for c in tqdm(rows, desc="mel", unit="clip", disable=not progress):
        if c.audio_path:
            out[c.id] = mel_of_file(ws.resolve(c.audio_path), config)
    return out


def build_gs_data(store: WindowStore, split: str, mels: dict, genres: list[str], frame_step: int = 2,
                  progress: bool = False) -> GSData:
    """Every window of ``split`` in ``store`` whose clip has a mel in ``mels``."""
    w = store.config.window_frames
    g_index = {g: i for i, g in enumerate(genres)}
    mel_l, dance_l, genre_l, ids, starts = [], [], [], [], []
    for i in tqdm(range(store.num_windows(split)), desc=f"gs {split}", unit="win", disable=not progress):
        win = store.window(split, i)
        if win.clip_id not in mels or win.genre not in g_index:
            continue
        mel_l.append(fit_frames(mels[win.clip_id][win.start:win.start + w], w))
        dance_l.append(dance_input(decode(win.motion).positions, frame_step))
        genre_l.append(g_index[win.genre])
        ids.append(win.clip_id)
        starts.append(int(win.start))
    n_mels = next(iter(mels.values())).shape[1] if mels else 64
    return GSData(np.stack(mel_l) if mel_l else np.zeros((0, w, n_mels), np.float32),
                  np.stack(dance_l) if dance_l else np.zeros((0, 6, 0, 22), np.float32),
                  np.asarray(genre_l, dtype=np.int64), list(genres), ids, starts)
