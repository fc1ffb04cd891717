"""4-s window datasets of the catalog for generative models (issue 13).

``open_windows(workspace)`` builds (or reuses) the cache under ``HOME/cache/generation/`` from every
catalog clip with SMPL-X rotations; ``WindowStore.window(split, i)`` gives a canonical window with its
music, beats, genre, dancer and captions; ``WindowDataset`` feeds a torch training loop.
"""
from __future__ import annotations

from pathlib import Path

from .config import WindowConfig
from .dataset import WindowDataset
from .store import SPLITS, Window, WindowStore, build_store, content_hash


def cache_root(home: Path) -> Path:
    return Path(home) / "cache" / "generation"


def open_windows(workspace, config: WindowConfig = WindowConfig(), progress: bool = True) -> WindowStore:
    """The window cache of ``workspace``'s catalog (an ``indexer.workspace.Workspace``), built when missing or stale."""
    from indexer.datasets import examples_for_split

    return build_store(examples_for_split(workspace, None), cache_root(workspace.home), config, progress=progress)


__all__ = ["SPLITS", "Window", "WindowConfig", "WindowDataset", "WindowStore", "build_store", "cache_root",
           "content_hash", "open_windows"]
