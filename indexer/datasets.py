"""Catalog -> ``encoders.training.data.ClipExample`` lists (the trainer and eval never read the catalog).

Media paths in the catalog are relative to the workspace home and are resolved here.
"""
from __future__ import annotations

from encoders.errors import DanceSearchError
from encoders.training.data import ClipExample

from .workspace import Workspace

SPLITS: tuple[str, ...] = ("train", "val", "test")


def examples_for_split(workspace: Workspace, split: str | None) -> list[ClipExample]:
    """Every clip of ``split`` (all clips when None), ordered by clip id, with its captions."""
    if split is not None and split not in SPLITS:
        raise DanceSearchError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if workspace.db_url.startswith("sqlite:///") and not workspace.catalog_path.exists() \
            and workspace.db_url == f"sqlite:///{workspace.catalog_path}":
        raise DanceSearchError(f"no catalog at {workspace.catalog_path}: ingest data first "
                               f"(dancesearch ingest npz DIR --home {workspace.home})")
    catalog = workspace.catalog(create=False)
    try:
        clips = catalog.clips(split=split)
        captions = catalog.captions_for([c.id for c in clips])
    finally:
        catalog.close()
    out = []
    for c in clips:
        motion = workspace.resolve(c.motion_path)
        assert motion is not None
        out.append(ClipExample(clip_id=c.id, motion_path=motion, music_path=workspace.resolve(c.music_path),
                               captions=captions.get(c.id, []), genre=c.genre or "unknown", dancer=c.dancer,
                               split=c.split, meta={"key": c.key, "bpm": c.bpm}))
    return out


def describe(workspace: Workspace) -> str:
    """A one-line description of the training data for the model card."""
    return f"catalog {workspace.db_url}"
