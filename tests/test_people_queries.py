"""Queries in people's words (issue 17): the hand-written set, its validation, P@5 scoring and the CLI."""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from encoders.cliutil import UsageError
from encoders.errors import InputError
from eval.people_queries import (DEFAULT_QUERIES, KINDS, SPLITS, PeopleQuery, embed_split, load_queries,
                                 paired_comparison, precision_at_k, query_encoder, score_queries, select)
from generation.procedural.taxonomy import GENRES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_support import GENRES as TINY_GENRES, WordEmbedder, make_workspace  # noqa: E402


# --- the shipped set ---------------------------------------------------------------------------------------
def test_shipped_set_is_complete_and_consistent():
    qs = load_queries()
    assert len(qs) >= 150
    assert len({q.id for q in qs}) == len(qs)
    assert len({re.sub(r"\W+", " ", q.text.casefold()).strip() for q in qs}) == len(qs)
    family = {g.name: g.family for g in GENRES}
    assert {q.genre for q in qs} == set(family)
    assert all(q.family == family[q.genre] for q in qs)
    per = Counter((q.genre, q.split) for q in qs)
    for g in family:
        assert per[g, "dev"] + per[g, "heldout"] >= 9, g
        assert per[g, "dev"] >= 4 and per[g, "heldout"] >= 4 and abs(per[g, "dev"] - per[g, "heldout"]) <= 1, g
    assert {q.kind for q in qs} == set(KINDS)
    assert {(q.kind, q.split) for q in qs} == {(k, s) for k in KINDS for s in SPLITS}


def test_shipped_split_follows_the_documented_rule():
    """i-th query of the g-th genre (taxonomy order) is dev when i + g is even (eval/queries/README.md)."""
    order = {g.name: i for i, g in enumerate(GENRES)}
    seen: Counter[str] = Counter()
    for q in load_queries():
        assert q.split == ("dev" if (seen[q.genre] + order[q.genre]) % 2 == 0 else "heldout"), q.id
        seen[q.genre] += 1


def test_only_named_and_misspelling_queries_contain_their_genre_name():
    for q in load_queries():
        if q.kind in ("named", "misspelling"):
            continue
        words = next(g.words for g in GENRES if g.name == q.genre)
        text = " " + re.sub(r"[^\w-]+", " ", q.text.casefold()) + " "
        assert not [w for w in words if f" {w} " in text], (q.id, q.text)


# --- validation --------------------------------------------------------------------------------------------
GOOD = {"id": "a-1", "text": "toprock into a freeze", "genre": "breaking", "family": "street", "kind": "jargon",
        "split": "dev"}


@pytest.mark.parametrize("bad, field", [
    ({**GOOD, "genre": "hiphp"}, "genre"),
    ({**GOOD, "family": "latin"}, "family"),
    ({**GOOD, "kind": "slang"}, "kind"),
    ({**GOOD, "split": "test"}, "split"),
    ({k: v for k, v in GOOD.items() if k != "text"}, "text"),
    ({**GOOD, "text": "  "}, "text"),
    ({**GOOD, "knd": "jargon"}, "knd"),
    ({**GOOD, "id": "a-0"}, "id"),                                      # duplicate id of line 1
    ({**GOOD, "id": "a-2", "text": "Toprock, into a FREEZE!"}, "text"),  # same words as line 1
])
def test_malformed_line_names_file_line_and_field(tmp_path, bad, field):
    f = tmp_path / "q.jsonl"
    first = {**GOOD, "id": "a-0"}
    f.write_text(json.dumps(first) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_queries(f)
    assert f"{f}:3" in str(e.value) and f"field '{field}'" in str(e.value)


def test_unreadable_json_and_missing_file(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps(GOOD) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{f}:2") + ".*not valid JSON"):
        load_queries(f)
    with pytest.raises(InputError, match="no such query file"):
        load_queries(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no queries"):
        load_queries(tmp_path / "empty.jsonl")


# --- scoring -----------------------------------------------------------------------------------------------
def test_precision_at_5_hand_computed():
    # gallery on the unit circle: angle decides the ranking; genres chosen so the answer is known
    angles = np.array([0, 10, 20, 30, 40, 50, 60, 70]) * np.pi / 180
    gallery = np.stack([np.cos(angles), np.sin(angles)], 1) * 3.0          # scale must not matter (cosine)
    genres = ["waltz", "tango", "waltz", "salsa", "ballet", "waltz", "krump", "waltz"]
    query = np.array([[1.0, 0.0], [np.cos(1.2), np.sin(1.2)]])             # 0 deg and ~69 deg
    res = precision_at_k(query, gallery, ["waltz", "salsa"], genres)
    # q0 top 5 = clips 0..4: waltz, tango, waltz, salsa, ballet -> genre 2/5; ballroom family 2/5
    # q1 (~69 deg) top 5 = clips 7, 6, 5, 4, 3: waltz, krump, waltz, ballet, salsa -> salsa 1/5;
    # latin family (salsa, tango) 1/5
    assert res.genre_p.tolist() == [0.4, 0.2] and res.family_p.tolist() == [0.4, 0.2]
    assert res.top[0].tolist() == [0, 1, 2, 3, 4] and res.top[1].tolist() == [7, 6, 5, 4, 3]
    # a tango query at 0 deg: tango (clip 1) in the top 5, and salsa (clip 3) shares its latin family
    res = precision_at_k(query[:1], gallery, ["tango"], genres)
    assert res.genre_p[0] == 0.2 and res.family_p[0] == 0.4


def test_ties_count_against_the_model_and_k_is_capped():
    gallery = np.ones((7, 3))                                              # every clip scores the same
    res = precision_at_k(np.ones((1, 3)), gallery, ["ballet"], ["ballet"] * 3 + ["house"] * 4)
    assert res.genre_p[0] == pytest.approx(1 / 5)                          # 4 wrong ones rank first at the tie
    res = precision_at_k(np.ones((1, 3)), gallery[:3], ["ballet"], ["ballet", "house", "ballet"])
    assert res.k == 3 and res.genre_p[0] == pytest.approx(2 / 3)


def test_paired_comparison_of_two_encoders():
    gallery = np.eye(4)
    qs = [PeopleQuery(f"q{i}", f"t{i}", g, "latin", "named", "dev") for i, g in enumerate(["salsa", "tango"])]
    good = precision_at_k(np.eye(4)[:2], gallery, ["salsa", "tango"], ["salsa", "tango", "waltz", "waltz"], k=1)
    bad = precision_at_k(np.eye(4)[[2, 3]], gallery, ["salsa", "tango"], ["salsa", "tango", "waltz", "waltz"], k=1)
    d = paired_comparison(qs, good, bad, n_boot=200)
    assert d["overall"]["genre_P@1"]["diff"] == 1.0 and d["overall"]["genre_P@1"]["lo"] == 1.0
    assert d["by_kind"]["named"]["family_P@1"]["diff"] == 1.0


class ExpandingEmbedder(WordEmbedder):
    """Has the lead's future ``encode_query(texts, expand=...)``: expansion appends the word 'waltz'."""

    def encode_query(self, texts, expand=False):
        return self.encode_text([t + (" waltz" if expand else "") for t in texts])


def test_query_encoder_uses_encode_query_only_when_present():
    plain = WordEmbedder()
    assert query_encoder(plain, None)[1] == "encode_text" and query_encoder(plain, False)[1] == "encode_text"
    with pytest.raises(UsageError, match="encode_query"):
        query_encoder(plain, True)
    emb = ExpandingEmbedder()
    enc, how = query_encoder(emb, True)
    assert how == "encode_query(expand=True)"
    assert np.allclose(enc(["salsa"]), emb.encode_text(["salsa waltz"]))
    assert query_encoder(emb, None)[1] == "encode_text"


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory):
    """A real SQLite catalog of 4 genres; its test split holds 2 clips per genre (8 clips)."""
    return make_workspace(tmp_path_factory.mktemp("people") / "home", clips_per_genre=6, with_audio=False)


def _tiny_queries(path: Path) -> Path:
    fam = {g.name: g.family for g in GENRES}
    rows = [{"id": f"t-{i}", "text": f"{'my' if i < 4 else 'a lovely'} {g} dance", "genre": g, "family": fam[g],
             "kind": "named", "split": SPLITS[i // 4]} for i, g in enumerate(TINY_GENRES * 2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_scores_on_a_real_tiny_catalog(tiny_ws, tmp_path):
    emb = WordEmbedder()
    gallery = embed_split(emb, tiny_ws, "test", progress=False)
    assert gallery.size == 8 and Counter(gallery.genres) == {g: 2 for g in TINY_GENRES}
    qs = select(load_queries(_tiny_queries(tmp_path / "q.jsonl")), "all")
    res = score_queries(qs, emb.encode_text, gallery)
    # each query names its genre: both clips of it rank first; the 4 genres are in 4 different families
    assert res.genre_p.tolist() == [0.4] * 8 and res.family_p.tolist() == [0.4] * 8
    assert len(select(qs, "heldout")) == 4
    top2 = score_queries(qs, emb.encode_text, gallery, k=2)
    assert top2.genre_p.tolist() == [1.0] * 8
    # "expansion" towards waltz: waltz queries keep their clips, the others lose some to waltz clips
    exp = score_queries(qs, query_encoder(ExpandingEmbedder(), True)[0], gallery, k=2)
    assert exp.genre_p[0] == 1.0 and exp.genre_p.mean() < 1.0


# --- command line ------------------------------------------------------------------------------------------
def test_cli_report_with_baseline(tiny_ws, tmp_path, monkeypatch, capsys):
    from encoders.api import DanceEmbedder
    from ui.cli import main

    monkeypatch.setattr(DanceEmbedder, "from_run", staticmethod(lambda *a, **k: WordEmbedder()))
    qfile = _tiny_queries(tmp_path / "q.jsonl")
    out = tmp_path / "report.md"
    argv = ["eval", "people-queries", "--home", str(tiny_ws.home), "--queries", str(qfile), "--subset", "heldout",
            "--baseline-run", "other", "--bootstrap", "50", "--out", str(out), "--json"]
    monkeypatch.setattr(sys, "argv", ["dancesearch", *argv])               # the report records the command
    rc = main(argv)
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["queries"] == 4 and payload["gallery_size"] == 8 and payload["split"] == "test"
    cand, base = payload["models"]
    assert cand["summary"]["overall"]["genre_P@5"] == 0.4 and cand["summary"]["ceiling"]["genre_P@5"] == 0.4
    assert set(cand["summary"]["by_genre"]) == set(TINY_GENRES) and base["role"] == "baseline"
    assert payload["paired"]["overall"]["family_P@5"]["diff"] == 0.0
    md = out.read_text(encoding="utf-8")
    assert "dancesearch eval people-queries --home" in md and "Paired difference" in md
    assert "| **all** | 4 | **0.400 [0.400, 0.400]**" in md and "measuring only" in md

    assert main(["eval", "people-queries", "--home", str(tiny_ws.home), "--queries", str(qfile), "--expand"]) == 2
    assert "encode_query" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**GOOD, "kind": "slang"}) + "\n", encoding="utf-8")
    assert main(["eval", "people-queries", "--home", str(tiny_ws.home), "--queries", str(bad)]) == 1
    assert f"{bad}:1: field 'kind'" in capsys.readouterr().err


def test_default_query_file_is_the_shipped_one():
    assert DEFAULT_QUERIES == Path(__file__).resolve().parents[1] / "eval" / "queries" / "people_words.jsonl"
