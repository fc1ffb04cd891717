"""Shared fixtures: the real data fixtures beside the project (../shared/data), skipped when absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Small tensors dominate the suite; on a shared 2-core machine, intra-op threads only add contention.
torch.set_num_threads(1)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DANCESEARCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; tests that need it are skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data fixtures not found at {SHARED_DATA} (a fresh user clone has no ../shared)")
    return SHARED_DATA
