"""The workspace: one folder (``--home``) holding the catalog, the clip media, caches and indexes.

Every layer finds its files through :class:`Workspace` so the layout of ARCHITECTURE.md lives in
one place; media paths stored in the catalog are relative to ``home`` so a workspace can be moved.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from encoders.cliutil import resolve_home

CATALOG_FILE = "catalog.sqlite"


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace; ``db_url`` defaults to ``sqlite:///HOME/catalog.sqlite``."""

    home: Path
    db_url: str | None = None

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().resolve()
        object.__setattr__(self, "home", home)
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{home / CATALOG_FILE}")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Workspace":
        """Build from the common ``--home`` option (or ``DANCESEARCH_HOME``) and an optional ``--db URL``."""
        return cls(resolve_home(getattr(args, "home", None)), getattr(args, "db", None) or None)

    # --- layout -----------------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        """The default SQLite file (used only when ``db_url`` points at it)."""
        return self.home / CATALOG_FILE

    @property
    def media_dir(self) -> Path:
        return self.home / "media"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def feature_cache_dir(self) -> Path:
        """Music feature cache (``cache/features/<sha1>.npz``) shared by ingest and queries."""
        return self.cache_dir / "features"

    @property
    def indexes_dir(self) -> Path:
        return self.home / "indexes"

    def index_dir(self, name: str) -> Path:
        return self.indexes_dir / name

    def sequence_media_dir(self, source: str, sequence: str) -> Path:
        return self.media_dir / source / sequence

    # --- relative media paths (what the catalog stores) ---------------------------------------------
    def relative(self, path: str | Path) -> str:
        """``path`` relative to ``home`` in POSIX form, as the catalog stores it."""
        return Path(path).resolve().relative_to(self.home).as_posix()

    def resolve(self, relative: str | Path | None) -> Path | None:
        """Absolute path of a catalog media path (``None`` stays ``None``)."""
        if relative is None:
            return None
        p = Path(relative)
        return p if p.is_absolute() else self.home / p

    def ensure(self) -> "Workspace":
        """Create ``home`` (and the media / cache folders) so SQLite and writers can open files there."""
        for d in (self.home, self.media_dir, self.feature_cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def catalog(self, create: bool = True):
        """Open the catalog of this workspace (``create``: make the tables when missing)."""
        from .catalog import Catalog  # local import: catalog pulls SQLAlchemy, keep workspace light

        if self.db_url.startswith("sqlite:///"):
            self.home.mkdir(parents=True, exist_ok=True)
        return Catalog(self.db_url, create=create)
