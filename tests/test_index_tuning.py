"""Search-effort tuning to a recall target (FaissIndex.tune, the builder's use of it) and the ivfpq codecs."""
from __future__ import annotations

import numpy as np
import pytest

from indexer.index import ClipAttributes, FaissIndex, FaissParams, normalise
from indexer.index import faiss_index as fi
from indexer.index.builder import build_index
from indexer.index.store import load_index, read_manifest, save_index
from indexer.index.store import GenreCentroids

D = 32


def low_rank(n: int, seed: int, rank: int = 8, clusters: int = 30) -> np.ndarray:
    """Clustered vectors on a rank-``rank`` subspace of D dims (like the model's clip embeddings)."""
    rng = np.random.default_rng(1)
    basis = rng.normal(size=(rank, D))
    centres = rng.normal(size=(clusters, rank))
    draw = np.random.default_rng(seed)
    z = centres[draw.integers(0, clusters, n)] + 0.35 * draw.normal(size=(n, rank))
    return normalise(z @ basis)


def queries(n: int, seed: int) -> np.ndarray:
    """Queries off the data (like text queries: a weak in-subspace component plus an orthogonal one)."""
    rng = np.random.default_rng(seed)
    return normalise(0.5 * low_rank(n, seed + 100) + rng.normal(size=(n, D)) / np.sqrt(D))


def attrs(n: int) -> ClipAttributes:
    return ClipAttributes.from_rows(list(range(1, n + 1)), [["a", "b", "c"][i % 3] for i in range(n)],
                                    [float(60 + i % 100) for i in range(n)], ["train"] * n, ["demo"] * n)


def recall(idx: FaissIndex, x: np.ndarray, q: np.ndarray, k: int = 10) -> float:
    truth = np.argsort(-(q @ x.T), axis=1)[:, :k] + 1  # ids are positions + 1
    got = idx.search(q, k).ids
    return float(np.mean([len(set(g) & set(t)) / k for g, t in zip(got, truth)]))


@pytest.fixture(scope="module")
def data():
    return low_rank(5000, seed=0), queries(200, seed=1), queries(200, seed=2)


def test_hnsw_tune_picks_the_smallest_ef_meeting_the_target(data):
    x, q_tune, q_test = data
    idx = FaissIndex("hnsw", D, FaissParams(hnsw_m=6, ef_construction=20, ef_search=16))
    idx.add(x, attrs(len(x)))
    before = recall(idx, x, q_tune)
    out = idx.tune(q_tune, k=10, target=0.97)
    assert before < 0.97 <= out["recall_lower_bound"] <= out["recall"] and out["reached"]
    assert out["ef_search"] == idx.params.ef_search == idx._index.hnsw.efSearch
    assert out["ef_search"] in fi.EF_LADDER and out["ef_search"] > 16
    assert all(t["lower_bound"] < 0.97 for t in out["tried"][:-1])  # every cheaper rung failed
    assert [t["ef_search"] for t in out["tried"]] == list(fi.EF_LADDER[:len(out["tried"])])
    assert idx.params.tuned_recall == out["recall"] and idx.params.tune_queries == 200
    assert recall(idx, x, q_tune) == pytest.approx(out["recall"], abs=1e-9)
    assert recall(idx, x, q_test) >= 0.95  # held-out queries


def test_tuned_effort_survives_save_and_load(data, tmp_path):
    x, q_tune, _ = data
    idx = FaissIndex("hnsw", D, FaissParams(hnsw_m=6, ef_construction=20, ef_search=16))
    idx.add(x, attrs(len(x)))
    ef = idx.tune(q_tune, target=0.97)["ef_search"]
    save_index(idx, tmp_path, model_id="m", centroids=GenreCentroids.from_index(idx, np.asarray(idx.vectors())))
    loaded = load_index(tmp_path, "m").index
    assert loaded.params.ef_search == ef and loaded._index.hnsw.efSearch == ef
    assert loaded.params.tuned_recall == idx.params.tuned_recall
    np.testing.assert_array_equal(loaded.search(q_tune, 10).ids, idx.search(q_tune, 10).ids)


@pytest.mark.parametrize("codec", ["sq8", "sq4", "pq4"])
def test_ivfpq_tune_reaches_the_target_without_probing_every_list(data, codec):
    x, q_tune, q_test = data
    idx = FaissIndex("ivfpq", D, FaissParams(ivf_codec=codec, nlist=64, nprobe=1, rerank_factor=10))
    idx.add(x, attrs(len(x)))
    out = idx.tune(q_tune, k=10, target=0.97)
    assert out["reached"] and out["recall_lower_bound"] >= 0.97
    assert out["nprobe"] == idx.params.nprobe < 64 and out["rerank_factor"] == idx.params.rerank_factor
    assert out["nprobe"] in fi.NPROBE_LADDER and out["rerank_factor"] in fi.RERANK_LADDER
    assert recall(idx, x, q_tune) == pytest.approx(out["recall"], abs=1e-9)
    assert recall(idx, x, q_test) >= 0.95
    # the nprobe it started from already held the target share of the true neighbours in its lists
    assert out["tried"][0]["nprobe"] <= out["nprobe"]


def test_unreachable_target_keeps_the_most_thorough_setting(data, monkeypatch):
    x, q_tune, _ = data
    monkeypatch.setattr(fi, "EF_LADDER", (16, 32))
    idx = FaissIndex("hnsw", D, FaissParams(hnsw_m=6, ef_construction=20))
    idx.add(x, attrs(len(x)))
    out = idx.tune(q_tune, target=1.01)
    assert not out["reached"] and out["ef_search"] == 32 and len(out["tried"]) == 2


def test_flat_tune_changes_nothing(data):
    x, q_tune, _ = data
    idx = FaissIndex("flat", D)
    idx.add(x[:500], attrs(500))
    out = idx.tune(q_tune)
    assert out["recall"] == 1.0 and out["reached"] and idx.params.tuned_recall is None


def test_codecs_sizes_and_unknown_codec(data):
    x, _, _ = data
    sizes = {}
    for codec in ("sq8", "sq4", "pq4"):
        idx = FaissIndex("ivfpq", D, FaissParams(ivf_codec=codec, nlist=32))
        idx.add(x, attrs(len(x)))
        sizes[codec] = fi.faiss.serialize_index(idx._index).nbytes
        assert idx.params.pq_nbits == (8 if codec == "sq8" else 4)
        assert (idx.params.pq_m is not None) == (codec == "pq4")
    assert sizes["sq8"] > sizes["sq4"] > sizes["pq4"]
    with pytest.raises(ValueError, match="ivf_codec"):
        FaissIndex("ivfpq", D, FaissParams(ivf_codec="zzz")).add(x[:100], attrs(100))


def test_params_written_before_codecs_existed_read_as_pq4():
    assert FaissParams.from_dict({"pq_m": 64, "nlist": 10, "pq_nbits": 4}).ivf_codec == "pq4"
    assert FaissParams.from_dict({"nlist": 10}).ivf_codec == "sq8"
    assert FaissParams.from_dict(None).tune_target == 0.98
    p = FaissParams(ivf_codec="sq4", tune_target=None)
    assert FaissParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_builder_tunes_ann_indexes_on_caption_queries(tmp_path, kind):
    from search_support import WordEmbedder, make_workspace

    ws = make_workspace(tmp_path / "home", clips_per_genre=6, with_audio=False)
    build_index(ws, WordEmbedder(), kind=kind)
    m = read_manifest(ws.index_dir("default"))
    cat = ws.catalog(create=False)
    distinct = {t for texts in cat.captions_for([c.id for c in cat.clips()]).values() for t in texts}
    cat.close()
    # each distinct caption plus as many query-like variants of them (builder.tuning_texts)
    assert m["tuning"]["kind"] == kind and m["tuning"]["queries"] == 2 * len(distinct)
    assert m["params"]["tuned_recall"] == m["tuning"]["recall"] and m["params"]["tune_queries"] == 2 * len(distinct)
    assert "tried" not in m["tuning"]


def test_builder_leaves_effort_alone_without_a_target(tmp_path):
    from search_support import WordEmbedder, make_workspace

    ws = make_workspace(tmp_path / "home", clips_per_genre=3, with_audio=False)
    build_index(ws, WordEmbedder(), kind="hnsw", params=FaissParams(tune_target=None, ef_search=40))
    m = read_manifest(ws.index_dir("default"))
    assert "tuning" not in m and m["params"]["ef_search"] == 40 and m["params"]["tuned_recall"] is None


def test_tuning_texts_mix_captions_and_query_like_variants():
    from indexer.index.builder import tuning_texts

    caps = [f"a {g} dance with {m}" for g in ("salsa", "waltz", "krump") for m in ("spins", "jumps", "kicks")]
    texts = tuning_texts(caps, count=10, seed=0)
    assert len(texts) == 10 and texts[:5] == [t for t in texts[:5] if t in caps]  # 5 captions first
    assert any(t not in caps for t in texts[5:])  # then variants
    assert tuning_texts(caps, 10, seed=0) == texts and tuning_texts([], 10) == []
    assert len(tuning_texts(caps[:2], count=500)) == 4  # a tiny catalog: its captions and as many variants
