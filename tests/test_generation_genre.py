"""Free-form text -> genre (GCDance eq. 1-2): training, the run directory, the CLI, and the shipped model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from encoders.errors import DanceSearchError, InputError
from encoders.model.text import BagOfWordsBackbone
from generation.genre import GenreClassifier, GenreClassifierConfig, train_genre_classifier
from generation.genre.classifier import DEFAULT_RUN_DIR, accuracy, labelled_json

WORDS = {"popping": ["robot", "hits", "isolations", "snap"], "waltz": ["ballroom", "three", "gliding", "circles"],
         "krump": ["stomps", "chest", "aggressive", "jabs"]}


def _captions(seed: int, n: int = 30) -> list[tuple[str, str]]:
    import random

    rng = random.Random(seed)
    out = []
    for genre, words in WORDS.items():
        for _ in range(n):
            filler = rng.sample(["a", "dance", "with", "some", "nice", "moves", "to", "music"], 4)
            out.append((" ".join(rng.sample(words, 2) + filler), genre))
    return out


def test_training_learns_the_genres_and_reports_confidence(tmp_path: Path) -> None:
    cfg = GenreClassifierConfig(backbone="bow", epochs=40, hidden=64)
    model, metrics = train_genre_classifier(_captions(0), _captions(1, 5), cfg, backbone=BagOfWordsBackbone(128),
                                            progress=False)
    assert model.genres == ["krump", "popping", "waltz"]
    assert metrics["val"]["top1"] > 0.9 and 1 <= metrics["best_epoch"] <= 40
    test = _captions(2, 5)
    assert accuracy(model, [t for t, _ in test], [g for _, g in test])["top1"] > 0.9
    pred = model.predict(["robot hits with a snap"])[0]
    assert pred.genre == "popping" and 0.5 < pred.confidence <= 1.0
    assert [g for g, _ in pred.top][0] == "popping" and abs(sum(p for _, p in pred.top) - 1.0) < 0.5
    with pytest.raises(InputError, match="empty text"):
        model.predict(["  "])


def test_run_directory_round_trip_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import generation.genre.classifier as clf

    monkeypatch.setattr(clf, "build_backbone", lambda name: BagOfWordsBackbone(128))
    cfg = GenreClassifierConfig(backbone="bow", epochs=10, hidden=32)
    model, metrics = train_genre_classifier(_captions(0), _captions(1, 5), cfg, backbone=BagOfWordsBackbone(128),
                                            progress=False)
    model.save(tmp_path / "run", {k: v for k, v in metrics.items() if k != "history"}, {"description": "toy"})
    again = GenreClassifier.from_pretrained(tmp_path / "run")
    texts = ["stomps and jabs", "gliding in circles"]
    assert [p.genre for p in again.predict(texts)] == [p.genre for p in model.predict(texts)]
    assert "top-1" in (tmp_path / "run" / "README.md").read_text()
    (tmp_path / "run" / "head.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="head.pt"):
        GenreClassifier.from_pretrained(tmp_path / "run")
    with pytest.raises(DanceSearchError, match="not a genre classifier run"):
        GenreClassifier.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(DanceSearchError, match="outside the classifier's list"):
        train_genre_classifier(_captions(0), [("x", "tango")], cfg, genres=["popping", "waltz", "krump"],
                               backbone=BagOfWordsBackbone(128), progress=False)


def test_query_set_file_is_read_with_errors_naming_the_line(tmp_path: Path) -> None:
    rows = labelled_json(Path(__file__).resolve().parents[1] / "eval" / "queries" / "genre_freeform.jsonl")
    assert len(rows) >= 36 and all(r["genre"] and r["text"] for r in rows)
    # hand-written in dancers' words: no query names its genre
    assert not [r for r in rows if r["genre"].replace("hiphop", "hip-hop") in r["text"].lower()]
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"text": "ok", "genre": "waltz"}\n{"text": 3}\n')
    with pytest.raises(InputError, match=r"q.jsonl:2"):
        labelled_json(bad)


@pytest.mark.skipif(not (DEFAULT_RUN_DIR / "head.pt").is_file(), reason="no shipped genre classifier")
def test_shipped_classifier_reads_clear_descriptions(capsys: pytest.CaptureFixture) -> None:
    from ui.cli import main

    assert main(["genre", "classify", "a sharp popping sequence with isolated arm movements",
                 "a slow lyrical waltz that travels in circles", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["genre"] for p in out["predictions"]] == ["popping", "waltz"]
    assert all(p["confidence"] > 0.5 for p in out["predictions"]) and len(out["genres"]) == 18
    assert main(["genre", "classify", ""]) == 2
