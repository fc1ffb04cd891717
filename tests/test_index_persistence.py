"""Index persistence: round trips, the model-version check, and kills during a rebuild."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from encoders.errors import ModelMismatchError
from indexer.index import ClipAttributes, FaissIndex, GenreCentroids, IndexNotFoundError, load_index, save_index
from indexer.index.store import MANIFEST

ROOT = Path(__file__).resolve().parents[1]
D = 16


def make(n: int, seed: int = 0, kind: str = "flat", first_id: int = 1) -> FaissIndex:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)).astype(np.float32)
    idx = FaissIndex(kind, D)
    idx.add(x, ClipAttributes.from_rows(list(range(first_id, first_id + n)), [["a", "b"][i % 2] for i in range(n)],
                                        [float(60 + i % 90) for i in range(n)], ["train"] * n, ["demo"] * n))
    return idx


def save(idx: FaissIndex, directory: Path, model: str = "m1") -> dict:
    cents = GenreCentroids.from_index(idx, np.asarray(idx.vectors()))
    return save_index(idx, directory, model_id=model, centroids=cents, calibration={"threshold": 0.25})


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_round_trip_same_results(tmp_path, kind):
    idx = make(600, kind=kind)
    q = np.random.default_rng(9).normal(size=(5, D)).astype(np.float32)
    before = idx.search(q, 8)
    manifest = save(idx, tmp_path)
    assert manifest["kind"] == kind and manifest["count"] == 600 and manifest["model_id"] == "m1"
    loaded = load_index(tmp_path, "m1")
    after = loaded.index.search(q, 8)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_allclose(before.scores, after.scores, atol=1e-6)
    assert loaded.threshold == 0.25 and loaded.centroids.names == ["a", "b"]
    assert loaded.centroids.centroid("a") is not None and loaded.centroids.centroid("zzz") is None


def test_other_model_is_refused_with_a_clear_message(tmp_path):
    save(make(50), tmp_path, model="cd-aaaa")
    with pytest.raises(ModelMismatchError) as exc:
        load_index(tmp_path, "cd-bbbb")
    msg = str(exc.value)
    assert "cd-aaaa" in msg and "cd-bbbb" in msg and "dancesearch index build" in msg


def test_missing_index_message(tmp_path):
    with pytest.raises(IndexNotFoundError, match="dancesearch index build"):
        load_index(tmp_path / "nothing", "m1")


def test_incremental_add_then_save_keeps_one_generation(tmp_path):
    idx = make(100)
    save(idx, tmp_path)
    more = make(40, seed=3, first_id=500)
    idx.add(np.asarray(more.vectors()), more.attributes())
    m = save(idx, tmp_path)
    assert m["generation"] == 2 and m["count"] == 140
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([MANIFEST, *m["files"].values()])  # generation 1 files were removed
    assert 520 in load_index(tmp_path, "m1").index.ids()


_CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import numpy as np
    sys.path.insert(0, {root!r})
    from pathlib import Path
    import indexer.index.store as store
    from indexer.index import ClipAttributes, FaissIndex, GenreCentroids, save_index
    mode, directory = sys.argv[1], Path(sys.argv[2])
    rng = np.random.default_rng(1)
    n = 20000 if mode == "loop" else 3000
    idx = FaissIndex("flat", {d})
    idx.add(rng.normal(size=(n, {d})).astype(np.float32),
            ClipAttributes.from_rows(list(range(10_000, 10_000 + n)), ["a"] * n, [100.0] * n, ["train"] * n, ["s"] * n))
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if mode == "before_manifest":          # every new file written, killed before the switch
        store.atomic_write_json = die
    elif mode == "mid_faiss":              # killed half-way through writing the FAISS file
        real = FaissIndex.write_index_file
        def partial(self, path):
            real(self, path)
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])
            die()
        FaissIndex.write_index_file = partial
    cents = GenreCentroids.from_index(idx, np.asarray(idx.vectors()))
    print("ready", flush=True)
    while True:
        save_index(idx, directory, model_id="m1", centroids=cents, calibration={{"threshold": 0.5}})
        if mode != "loop":
            break
""")


def _child(tmp_path: Path, mode: str, directory: Path) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(root=str(ROOT), d=D))
    return subprocess.Popen([sys.executable, str(script), mode, str(directory)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _assert_previous_usable(directory: Path, q: np.ndarray, expected_ids: np.ndarray) -> None:
    loaded = load_index(directory, "m1")
    assert len(loaded.index) == 200 and loaded.threshold == 0.25
    np.testing.assert_array_equal(loaded.index.search(q, 5).ids, expected_ids)


@pytest.mark.parametrize("mode", ["before_manifest", "mid_faiss"])
def test_kill_during_rebuild_leaves_previous_index_usable(tmp_path, mode):
    directory = tmp_path / "idx"
    idx = make(200)
    save(idx, directory)
    q = np.random.default_rng(4).normal(size=(3, D)).astype(np.float32)
    expected = idx.search(q, 5).ids
    proc = _child(tmp_path, mode, directory)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    leftovers = {p.name for p in directory.iterdir()} - {MANIFEST, *json.loads((directory / MANIFEST).read_text())["files"].values()}
    assert leftovers, "the child should have been killed with a new generation half written"
    _assert_previous_usable(directory, q, expected)
    # the next successful save cleans the dead generation up
    m = save(idx, directory)
    assert {p.name for p in directory.iterdir()} == {MANIFEST, *m["files"].values()}


def test_kill_at_random_moments_of_repeated_rebuilds(tmp_path):
    """SIGKILL a process that rebuilds in a loop at several moments: the index always loads whole."""
    directory = tmp_path / "idx"
    idx = make(200)
    save(idx, directory)
    q = np.random.default_rng(4).normal(size=(3, D)).astype(np.float32)
    expected = idx.search(q, 5).ids
    rng = np.random.default_rng(0)
    for _ in range(3):
        proc = _child(tmp_path, "loop", directory)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.6)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        loaded = load_index(directory, "m1")
        n = len(loaded.index)
        assert n in (200, 20_000)
        assert len(loaded.index.ids()) == n and np.asarray(loaded.index.vectors()).shape == (n, D)
        if n == 200:
            np.testing.assert_array_equal(loaded.index.search(q, 5).ids, expected)
        else:
            assert loaded.threshold == 0.5 and loaded.index.ids()[0] == 10_000
