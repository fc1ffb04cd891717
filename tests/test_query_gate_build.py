"""The query gate's build path (issue 15): fitted by ``index build`` and saved in the manifest
(``query_gate``) and ``gate-<g>.npz``, loaded back by the search engine, reused by updates that keep
model, served genres and labelled data, left out (threshold-only no-match flag) for an older index,
and skipped with a warning naming the missing files when its data is absent.

Catalog: a copy of the session ``demo_workspace`` (8 procedural demo clips of 8 genres, captions,
no val clip) plus one clip of source ``generated`` and genre ``flamenco`` that the catalog otherwise
lacks; the model is the test suite's ``WordEmbedder`` (hashed bag of words), so the joint-space
features are crude and the fit rests mostly on the static space and the lexicon names.  The index is
built once per module (~10 s, most of it loading the static word-piece table); tests that change it
work on copies.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.catalog import ClipRow, SequenceRow
from indexer.index import builder
from indexer.index import query_gate as qg
from indexer.index.builder import build_index, update_index
from indexer.index.service import SearchEngine
from indexer.index.store import read_manifest
from indexer.workspace import Workspace
from tests.search_support import WordEmbedder

GEN_GENRE = "flamenco"          # in indexer/assets/dance_lexicon.json, not a demo genre
GATE_ARRAYS = {"ref_joint", "ref_static", "lex_joint", "lex_static", "served_static"}
# not rows of the labelled sets' calib half (the fit's training data)
MATCH_Q = "a hiphop routine with an energetic groove"
NOT_DANCE_Q = "how to bake sourdough bread"
GAP_Q = "bollywood dance with expressive hand gestures"
GEN_GENRE_Q = "flamenco with stamping heels and hand clapping"


def _add_clip(ws: Workspace, name: str, genre: str, source: str, caption: str, split: str = "train") -> None:
    """A catalog clip reusing the first clip's motion and music files."""
    cat = ws.catalog()
    first = cat.clips()[0]
    seq = SequenceRow(source=source, name=name, path=f"{source}/{name}", genre=genre, dancer=None, fps=30.0,
                      num_frames=45, bpm=first.bpm, has_audio=False, split=split, meta={})
    clip = ClipRow(clip_index=0, start_frame=0, end_frame=45, duration_s=1.5, motion_path=first.motion_path,
                   music_path=first.music_path, audio_path=None, tags={}, captions=[(caption, "file")])
    cat.replace_sequence(seq, [clip], True)
    cat.close()


def _copy(home: Path, dst: Path) -> Workspace:
    shutil.copytree(home, dst)
    return Workspace(dst)


def _manifest(ws: Workspace, name: str = "default") -> dict[str, Any]:
    m = read_manifest(ws.index_dir(name))
    assert m is not None
    return m


@pytest.fixture(scope="module")
def built(demo_workspace: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Any]:
    """(workspace, BuildReport): the demo catalog + a generated flamenco clip, indexed with the gate."""
    ws = _copy(demo_workspace.home, tmp_path_factory.mktemp("gate_build") / "home")
    # a train clip, captioned with a gap query: neither its genre nor its caption may count as served
    _add_clip(ws, "gen_0001", GEN_GENRE, qg.GENERATED_SOURCE, GEN_GENRE_Q)
    report = build_index(ws, WordEmbedder())
    return ws, report


@pytest.fixture(scope="module")
def engine(built: tuple[Workspace, Any]) -> SearchEngine:
    return SearchEngine.open(built[0], WordEmbedder())


def test_build_fits_the_gate_and_saves_it(built: tuple[Workspace, Any]) -> None:
    ws, report = built
    assert report.action == "build" and report.warnings == []
    m = _manifest(ws)
    gate = m["query_gate"]
    assert "query_gate_skipped" not in m
    assert gate["format"] == qg.GATE_FORMAT and gate["features"] == list(qg.FEATURES)
    assert np.asarray(gate["coef"]).shape == (len(qg.OUTCOMES), len(qg.FEATURES))
    assert gate["calibration"]["labelled_calib"] == {"match": 35, "gap": 35, "not_dance": 35}
    path = ws.index_dir("default") / m["files"]["gate"]
    assert path.name == f"gate-{m['generation']}.npz" and path.is_file()
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == GATE_ARRAYS
        assert z["ref_static"].shape[0] == gate["reference_captions"] > 0
        assert z["lex_static"].shape[0] == len(gate["unserved"])


def test_generated_genre_is_not_served(built: tuple[Workspace, Any], engine: SearchEngine) -> None:
    ws, _ = built
    gate = _manifest(ws)["query_gate"]
    demo = sorted({c.genre for c in ws.catalog(create=False).clips() if c.source != qg.GENERATED_SOURCE})
    assert gate["genres"] == demo and GEN_GENRE not in demo
    assert GEN_GENRE in gate["unserved"] and GEN_GENRE not in gate["served"]
    assert GEN_GENRE in engine.indexed_genres()           # a genre filter may still name it ...
    assert GEN_GENRE not in engine.known_genres()         # ... but the index does not serve it
    assert engine.known_genres() == set(demo)
    (d,) = engine.classify([GEN_GENRE_Q])
    assert d.outcome == "gap" and GEN_GENRE in d.named_missing
    body = engine.search(engine.validate(GEN_GENRE_Q, 5, 0))
    assert body["outcome"] == "gap" and body["no_match"] is True
    assert all(r["source"] != qg.GENERATED_SOURCE for r in body["results"])


def test_gap_proposal_never_names_a_generated_only_genre(engine: SearchEngine) -> None:
    from search_api.service import GenreProposer

    proposer = GenreProposer()
    proposer._failed = True   # the centroid fallback: every known genre with a centroid is a candidate
    qvec = engine.loaded.centroids.centroid(GEN_GENRE)
    assert qvec is not None   # the generated clip has a centroid: before the fix it was proposed here
    genre, _, source = proposer.genre(engine, GEN_GENRE_Q, qvec)
    assert source == "centroids" and genre != GEN_GENRE and genre in engine.known_genres()


def test_loaded_gate_classifies_three_obvious_queries(engine: SearchEngine) -> None:
    assert engine.gate is not None
    got = {q: d.outcome for q, d in zip([MATCH_Q, NOT_DANCE_Q, GAP_Q], engine.classify([MATCH_Q, NOT_DANCE_Q, GAP_Q]))}
    assert got == {MATCH_Q: "match", NOT_DANCE_Q: "not_dance", GAP_Q: "gap"}
    bodies = {q: engine.search(engine.validate(q, 3, 0)) for q in (MATCH_Q, NOT_DANCE_Q, GAP_Q)}
    assert {q: b["outcome"] for q, b in bodies.items()} == got
    assert bodies[MATCH_Q]["no_match"] is False and bodies[GAP_Q]["no_match"] is True
    assert set(bodies[GAP_Q]["outcome_scores"]) == set(qg.OUTCOMES)


def test_old_manifest_without_gate_keeps_threshold_only_flag(built: tuple[Workspace, Any], tmp_path: Path) -> None:
    ws = _copy(built[0].home, tmp_path / "home")
    directory = ws.index_dir("default")
    m = _manifest(ws)
    (directory / m["files"].pop("gate")).unlink()
    m.pop("query_gate")
    (directory / "manifest.json").write_text(json.dumps(m))
    engine = SearchEngine.open(ws, WordEmbedder())
    assert engine.gate is None and engine.classify([NOT_DANCE_Q]) is None
    body = engine.search(engine.validate(NOT_DANCE_Q, 3, 0))
    assert body["outcome"] in ("match", "gap") and body["outcome_scores"] is None
    threshold = engine.threshold
    expected = "gap" if threshold is not None and body["results"][0]["score"] < threshold else "match"
    assert body["outcome"] == expected
    # the next `index build` fits the missing gate without touching the clips
    report = update_index(ws, WordEmbedder())
    assert report.action == "recalibrate" and report.embedded == 0
    assert _manifest(ws)["query_gate"]["genres"] == _manifest(built[0])["query_gate"]["genres"]
    assert SearchEngine.open(ws, WordEmbedder()).gate is not None


def test_update_with_same_model_genres_and_data_reuses_the_fit(built: tuple[Workspace, Any], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _copy(built[0].home, tmp_path / "home")
    before = _manifest(ws)
    with np.load(ws.index_dir("default") / before["files"]["gate"]) as z:
        arrays = {k: z[k].copy() for k in z.files}

    def no_refit(*a: Any, **k: Any) -> None:
        raise AssertionError("the gate was refitted")

    monkeypatch.setattr(builder, "calibrate_gate", no_refit)
    assert update_index(ws, WordEmbedder()).action == "unchanged"
    # a new clip of a served genre, and a generated clip of another genre the catalog lacks: served genres
    # (and so the fit) stay the same
    _add_clip(ws, "hiphop_extra", "hiphop", "demo", "a hiphop routine with bounce")
    _add_clip(ws, "gen_0002", "krump", qg.GENERATED_SOURCE, "krump arm swings")
    report = update_index(ws, WordEmbedder())
    assert report.action == "update" and report.embedded == 2 and report.warnings == []
    after = _manifest(ws)
    assert after["generation"] == before["generation"] + 1
    assert after["query_gate"] == before["query_gate"]
    with np.load(ws.index_dir("default") / after["files"]["gate"]) as z:
        assert {k: np.array_equal(z[k], arrays[k]) for k in z.files} == {k: True for k in arrays}


def test_missing_gate_data_is_reported_not_silent(built: tuple[Workspace, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    ws = _copy(built[0].home, tmp_path / "home")
    empty = tmp_path / "no_queries"
    empty.mkdir()
    monkeypatch.setenv(qg.LABELLED_ENV, str(empty))
    missing = empty / "gate_match.jsonl"
    assert missing in qg.missing_gate_data()

    # a fresh index: no gate, a warning naming the files on stderr and in the report, and the skip remembered
    report = build_index(ws, WordEmbedder(), name="nogate")
    err = capsys.readouterr().err
    assert "query gate not fitted" in err and str(missing) in err
    assert report.warnings and str(missing) in report.warnings[0]
    m = _manifest(ws, "nogate")
    assert "query_gate" not in m and "gate" not in m["files"] and "query_gate_skipped" in m
    assert SearchEngine.open(ws, WordEmbedder(), name="nogate").gate is None
    # the next build has nothing to do, and still says why there is no gate
    report = update_index(ws, WordEmbedder(), name="nogate")
    assert report.action == "unchanged" and str(missing) in capsys.readouterr().err and report.warnings

    # an index with a gate keeps its fit (same model, same served genres) when the data went missing
    before = _manifest(ws)["query_gate"]
    _add_clip(ws, "hiphop_extra", "hiphop", "demo", "a hiphop routine with bounce")
    report = update_index(ws, WordEmbedder())
    assert report.action == "update" and str(missing) in capsys.readouterr().err
    assert _manifest(ws)["query_gate"] == before

    # the lexicon is data too
    monkeypatch.delenv(qg.LABELLED_ENV)
    monkeypatch.setattr(qg, "LEXICON_PATH", tmp_path / "no_lexicon.json")
    assert qg.missing_gate_data() == [tmp_path / "no_lexicon.json"]
    report = build_index(ws, WordEmbedder(), name="nolex")
    assert "query_gate" not in _manifest(ws, "nolex") and "no_lexicon.json" in capsys.readouterr().err
