"""Milvus backend round trip against Milvus Lite (skipped with the reason when it cannot start)."""
from __future__ import annotations

import numpy as np
import pytest

from indexer.index import ClipAttributes, ClipFilter, GenreCentroids, load_index, save_index

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'dancesearch[milvus]')")

D = 16
N = 400


@pytest.fixture(scope="module")
def lite_uri(tmp_path_factory):
    from indexer.index.milvus_index import MilvusIndex, MilvusUnavailableError

    uri = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    try:
        probe = MilvusIndex.create(uri, D, "flat", collection="probe")
        probe.drop()
        probe.close()
    except (MilvusUnavailableError, Exception) as exc:  # noqa: BLE001 - any start-up failure means: skip
        pytest.skip(f"Milvus Lite cannot start here: {exc}")
    return uri


def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, D))
    x = centres[rng.integers(0, 8, N)] + 0.3 * rng.normal(size=(N, D))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    attrs = ClipAttributes.from_rows(list(range(1, N + 1)), [["waltz", "salsa", "tango"][i % 3] for i in range(N)],
                                     [None if i % 11 == 0 else float(60 + i % 100) for i in range(N)],
                                     ["val" if i % 5 == 0 else "train" for i in range(N)], ["demo"] * N)
    return x, attrs


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_milvus_round_trip_matches_exact_search(lite_uri, tmp_path, kind):
    from indexer.index.milvus_index import MilvusIndex

    x, attrs = data()
    idx = MilvusIndex.create(lite_uri, D, kind)
    idx.add(x[:300], attrs.take(np.arange(300)))
    idx.add(x[300:], attrs.take(np.arange(300, N)))   # incremental
    assert len(idx) == N
    q = x[:5] + 0.05
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    exact = q @ x.T
    hits = idx.search(q, 10)
    for i in range(5):
        truth = set((np.argsort(-exact[i])[:10] + 1).tolist())
        assert len(set(hits.ids[i].tolist()) & truth) >= 9
        np.testing.assert_allclose(hits.scores[i], np.sort(exact[i][hits.ids[i] - 1])[::-1], atol=1e-4)
    # filters are pushed down to Milvus and keep exactly min(k, matching) results
    flt = ClipFilter.build(["salsa"], bpm_min=100, bpm_max=110, split="train")
    mask = flt.mask(attrs)
    got = idx.search(q, 10, flt)
    assert ((got.ids >= 0).sum(axis=1) == min(10, mask.sum())).all()
    assert all(mask[i - 1] for i in got.ids.reshape(-1) if i >= 0)
    np.testing.assert_allclose(idx.vectors_for(np.array([3, 1])), x[[2, 0]], atol=1e-5)

    # persisted beside the catalog: the manifest names uri + collection; loading reconnects
    cents = GenreCentroids()
    cents.add(x, attrs.values("genre"))
    save_index(idx, tmp_path, model_id="m1", centroids=cents, calibration={"threshold": 0.1})
    idx.close()
    loaded = load_index(tmp_path, "m1")
    assert loaded.index.backend == "milvus" and len(loaded.index) == N
    again = loaded.index.search(q, 10)
    np.testing.assert_array_equal(again.ids, hits.ids)
    loaded.index.drop()
    loaded.index.close()
