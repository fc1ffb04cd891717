"""Query gate (issue 15): name matching, the lexicon split, the generated-clip filter, and the three
query classes on the labelled sets (slow: fits the gate with the shipped model on a demo workspace)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from indexer.index import query_gate as qg
from indexer.index.filters import ClipAttributes, ClipFilter


def test_name_matcher_whole_words_and_blocked_short_forms():
    m = qg.NameMatcher(["flamenco", "swing dance", "belly dance", "k-pop"], blocked=["swing"])
    assert m.find("Flamenco with stamping heels") == ["flamenco"]
    assert m.find("a dance with a swing feel") == []          # "swing" alone is the captions' word
    assert m.find("swing dance with a partner") == ["swing dance"]
    assert m.find("belly shimmies and bellydance") == ["belly dance"]
    assert m.find("kpop choreography") == ["k-pop"]
    assert m.find("flamencos") == []


def test_split_lexicon_uses_genres_and_caption_phrases():
    served, unserved, blocked = qg.split_lexicon(
        ["ballet", "hip hop", "chinese classical dance", "swing dance", "flamenco"], ["ballet", "hiphop"],
        ["a chinese classical piece with a swing feel"])
    assert served == ["ballet", "hip hop", "chinese classical dance"]
    assert unserved == ["swing dance", "flamenco"]
    assert blocked == ["swing"]


def test_labelled_sets_have_three_classes_and_both_splits():
    rows = qg.read_labelled()
    for label in qg.OUTCOMES:
        mine = [r for r in rows if r["label"] == label]
        assert len(mine) >= 60
        assert {r["split"] for r in mine} == {"calib", "heldout"}
    assert len({r["text"] for r in rows}) == len(rows)


def test_gate_data_is_package_data_with_one_home():
    """Lexicon and labelled sets live under indexer/assets, and pyproject's package data ships them (a
    non-editable install has them); nothing of them is left under eval/queries."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    indexer = root / "indexer"
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["indexer"]
    files = [qg.LEXICON_PATH, *qg.labelled_paths(qg.LABELLED_DIR)]
    assert qg.missing_gate_data(qg.LABELLED_DIR) == []
    for f in files:
        rel = f.resolve().relative_to(indexer.resolve()).as_posix()
        assert any(fnmatch.fnmatch(rel, pat) and rel.count("/") == pat.count("/") for pat in patterns), rel
    assert not list((root / "eval" / "queries").glob("gate_*.jsonl"))


def test_labelled_dir_env_override(tmp_path, monkeypatch):
    (tmp_path / "gate_gap.jsonl").write_text('{"text": "a clog dance", "label": "gap", "split": "calib"}\n')
    monkeypatch.setenv(qg.LABELLED_ENV, str(tmp_path))
    assert qg.read_labelled() == [{"text": "a clog dance", "label": "gap", "split": "calib"}]
    assert qg.missing_gate_data() == [tmp_path / "gate_match.jsonl", tmp_path / "gate_not_dance.jsonl"]


def test_served_genres_leave_out_generated_only_genres():
    attrs = ClipAttributes.from_rows([1, 2, 3, 4, 5], ["waltz", "flamenco", "waltz", None, "salsa"], [90.0] * 5,
                                     ["train"] * 5, ["demo", "generated", "generated", "demo", "generated"])
    assert qg.served_genres(attrs) == ["waltz"]
    assert qg.served_genres(ClipAttributes.from_rows([1], ["tango"], [90.0], ["train"], ["demo"])) == ["tango"]


def test_generated_clips_are_excluded_by_the_filter():
    attrs = ClipAttributes.from_rows([1, 2, 3], ["waltz"] * 3, [90.0] * 3, ["test"] * 3, ["demo", "generated", "demo"])
    flt = ClipFilter(exclude_sources=("generated",))
    assert not flt.is_empty
    assert flt.mask(attrs).tolist() == [True, False, True]
    assert ClipFilter().mask(attrs).all()
    assert 'source not in ["generated"]' in flt.milvus_expr()
    assert flt.with_genres(("waltz",)).exclude_sources == ("generated",)


def test_engine_leaves_out_generated_unless_asked(tmp_path):
    from tests.search_support import WordEmbedder, make_workspace
    from indexer.catalog import ClipRow, SequenceRow
    from indexer.index.builder import build_index
    from indexer.index.service import SearchEngine

    ws = make_workspace(tmp_path / "home", clips_per_genre=2)
    cat = ws.catalog()
    first = cat.clips()[0]
    seq = SequenceRow(source="generated", name="gen_0001", path="generated/gen_0001", genre=first.genre,
                      dancer=None, fps=30.0, num_frames=45, bpm=first.bpm, has_audio=False, split="test", meta={})
    clip = ClipRow(clip_index=0, start_frame=0, end_frame=45, duration_s=1.5, motion_path=first.motion_path,
                   music_path=first.music_path, audio_path=None, tags={}, captions=[("a generated waltz", "file")])
    cat.replace_sequence(seq, [clip], True)
    build_index(ws, WordEmbedder())
    engine = SearchEngine.open(ws, WordEmbedder())
    gen_ids = {c.id for c in cat.clips(source="generated")}
    assert gen_ids
    body = engine.search(engine.validate(first.genre, 50, 0))
    assert not gen_ids & {r["id"] for r in body["results"]}
    assert body["query"]["include_generated"] is False
    body = engine.search(engine.validate(first.genre, 50, 0, include_generated=True))
    assert gen_ids & {r["id"] for r in body["results"]}
    assert {"outcome", "outcome_reason", "proposal"} <= set(body)


@pytest.mark.slow
def test_three_classes_on_heldout_with_the_demo_model():
    """Set DANCESEARCH_GATE_HOME to a demo workspace (``dancesearch demo --once --home DIR``)."""
    home = os.environ.get("DANCESEARCH_GATE_HOME")
    if not home or not (Path(home) / "catalog.sqlite").exists():
        pytest.skip("no demo workspace (DANCESEARCH_GATE_HOME)")
    from indexer.index.embedder import encode_queries, load_embedder
    from indexer.workspace import Workspace

    cat = Workspace(Path(home)).catalog(create=False)
    emb = load_embedder(None)
    clips = cat.clips()
    caps = cat.captions_for([c.id for c in clips])
    params, arrays = qg.calibrate_gate(emb, clips, caps, sorted({c.genre for c in clips}))
    gate = qg.QueryGate(params, arrays)
    held = qg.read_labelled(split="heldout")
    dec = gate.classify([r["text"] for r in held], encode_queries(emb, [r["text"] for r in held]))
    for label in qg.OUTCOMES:
        pairs = [(r, d) for r, d in zip(held, dec) if r["label"] == label]
        assert np.mean([d.outcome == label for _, d in pairs]) >= 0.85, label
    test = [t for c in clips if c.split == "test" for t in caps.get(c.id, [])]
    flagged = np.mean([d.outcome != "match" for d in gate.classify(test, encode_queries(emb, test))])
    assert flagged < 0.05
