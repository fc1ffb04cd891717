"""Catalog, workspace, clipping and captions: real SQLite files (and a throwaway PostgreSQL when available)."""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from encoders.errors import InputError
from indexer.captions import assign_captions, parse_captions_lines
from indexer.catalog import Catalog, ClipRow, SequenceRow
from indexer.clipping import assign_split, clip_spans, expected_clip_count
from indexer.workspace import Workspace


def _seq(name: str, genre: str = "salsa", split: str = "train", bpm: float | None = 100.0,
         source: str = "demo", frames: int = 720) -> SequenceRow:
    return SequenceRow(source=source, name=name, path=f"/data/{name}.npz", genre=genre, dancer="d01", fps=30.0,
                       num_frames=frames, bpm=bpm, has_audio=True, split=split, meta={"k": [1, 2]})


def _clips(name: str, n: int, source: str = "demo", step: int = 360, tags: dict | None = None) -> list[ClipRow]:
    return [ClipRow(clip_index=i, start_frame=i * step, end_frame=i * step + 360, duration_s=12.0,
                    motion_path=f"media/{source}/{name}/{i}.motion.npz", music_path=f"media/{source}/{name}/{i}.music.npy",
                    audio_path=f"media/{source}/{name}/{i}.ogg", tags=dict(tags or {"energy": "high"}),
                    captions=[(f"{name} clip {i}", "file"), ("a dance", "metadata")])
            for i in range(n)]


@pytest.fixture()
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog(f"sqlite:///{tmp_path / 'cat.sqlite'}")
    yield cat
    cat.close()


def _fill(cat: Catalog) -> None:
    cat.replace_sequence(_seq("salsa_01"), _clips("salsa_01", 2), content_changed=False)
    cat.replace_sequence(_seq("waltz_01", genre="waltz", split="test", bpm=90.0), _clips("waltz_01", 3, tags={"energy": "low"}),
                         content_changed=False)
    cat.replace_sequence(_seq("hiphop_01", genre="hiphop", split="val", bpm=None, source="other"),
                         _clips("hiphop_01", 1, source="other"), content_changed=False)


def test_queries_filter_and_detach(catalog: Catalog) -> None:
    _fill(catalog)
    all_clips = catalog.clips()
    assert [c.id for c in all_clips] == sorted(c.id for c in all_clips) and len(all_clips) == 6
    assert {c.key for c in catalog.clips(split="test")} == {"demo/waltz_01#0", "demo/waltz_01#1", "demo/waltz_01#2"}
    assert len(catalog.clips(genres=["salsa", "hiphop"])) == 3
    assert len(catalog.clips(bpm_range=(95, None))) == 2            # salsa 100; hiphop has no bpm
    assert len(catalog.clips(bpm_range=(80, 95))) == 3
    assert len(catalog.clips(source="other")) == 1
    assert catalog.clips(genres=["waltz"], split="train") == []
    clip = catalog.clip_by_key("demo/waltz_01#1")
    assert clip is not None and clip.genre == "waltz" and clip.bpm == 90.0 and clip.split == "test"
    # detached objects stay readable: columns, the sequence and the captions
    d = clip.as_dict()
    assert d["sequence"] == "waltz_01" and d["captions"] == ["waltz_01 clip 1", "a dance"] and d["tags"] == {"energy": "low"}
    assert catalog.clip(clip.id).key == clip.key
    assert catalog.clip(10_000) is None and catalog.clip_by_key("nope#0") is None
    caps = catalog.captions_for([clip.id, 10_000])
    assert caps == {clip.id: ["waltz_01 clip 1", "a dance"], 10_000: []}
    assert catalog.genre_counts() == {"waltz": 3, "salsa": 2, "hiphop": 1}


def test_stats(catalog: Catalog) -> None:
    _fill(catalog)
    st = catalog.stats()
    assert st["clips"] == 6 and st["sequences"] == 3 and st["captioned_clips"] == 6
    assert st["genres"] == {"waltz": 3, "salsa": 2, "hiphop": 1}
    assert st["splits"] == {"test": 3, "train": 2, "val": 1}
    assert st["sources"] == {"demo": 5, "other": 1}
    assert st["tags"] == {"energy": {"high": 3, "low": 3}}


def test_upsert_keeps_ids_and_never_reuses_them(catalog: Catalog) -> None:
    ids = catalog.replace_sequence(_seq("a"), _clips("a", 3), content_changed=False)
    again = catalog.replace_sequence(_seq("a", genre="tango"), _clips("a", 3), content_changed=False)
    assert again == ids                                                  # unchanged clips keep their ids
    assert len(catalog.clips()) == 3 and {c.genre for c in catalog.clips()} == {"tango"}
    assert len(catalog.sequences()) == 1
    # captions replaced, not duplicated
    assert catalog.captions_for(ids)[ids[0]] == ["a clip 0", "a dance"]
    # clip 2 changes span, clip 1 disappears? no: fewer clips -> the last ones are deleted
    moved = _clips("a", 3)
    moved[2] = ClipRow(2, 500, 860, 12.0, "m", None, None)
    ids2 = catalog.replace_sequence(_seq("a"), moved, content_changed=False)
    assert ids2[:2] == ids[:2] and ids2[2] not in ids
    ids3 = catalog.replace_sequence(_seq("a"), _clips("a", 2), content_changed=False)
    assert ids3 == ids[:2] and catalog.clip(ids2[2]) is None and len(catalog.clips()) == 2
    # content changed: every clip gets a fresh id, higher than any id ever used (AUTOINCREMENT)
    ids4 = catalog.replace_sequence(_seq("a"), _clips("a", 2), content_changed=True)
    assert min(ids4) > max(ids + ids2) and len(catalog.clips()) == 2
    assert catalog.delete_sequence("demo", "a") and catalog.clips() == [] and catalog.captions_for(ids4)[ids4[0]] == []


def test_failed_transaction_leaves_catalog_unchanged(catalog: Catalog) -> None:
    ids = catalog.replace_sequence(_seq("a"), _clips("a", 2), content_changed=False)
    bad = _clips("a", 2)
    bad[1] = ClipRow(0, 0, 360, 12.0, "m", None, None)                  # duplicate clip_index -> unique key clash
    with pytest.raises(Exception):
        catalog.replace_sequence(_seq("a", genre="changed"), bad, content_changed=True)
    assert [c.id for c in catalog.clips()] == ids and catalog.clips()[0].genre == "salsa"


def test_workspace_paths_and_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.from_args(argparse.Namespace(home=tmp_path / "h", db=None))
    assert ws.home == (tmp_path / "h").resolve()
    assert ws.db_url == f"sqlite:///{ws.home / 'catalog.sqlite'}"
    assert ws.feature_cache_dir == ws.home / "cache" / "features" and ws.index_dir("x") == ws.home / "indexes" / "x"
    p = ws.sequence_media_dir("npz", "s") / "0.motion.npz"
    assert ws.relative(p) == "media/npz/s/0.motion.npz" and ws.resolve("media/npz/s/0.motion.npz") == p
    monkeypatch.setenv("DANCESEARCH_HOME", str(tmp_path / "env"))
    ws2 = Workspace.from_args(argparse.Namespace(home=None, db="sqlite:///" + str(tmp_path / "other.db")))
    assert ws2.home == (tmp_path / "env").resolve() and ws2.db_url.endswith("other.db")
    cat = ws2.catalog()
    cat.close()
    assert (tmp_path / "other.db").is_file()


def test_clip_spans_policy() -> None:
    assert clip_spans(179) == []                                         # < half a clip
    assert [(s.start_frame, s.end_frame) for s in clip_spans(200)] == [(0, 200)]
    assert [(s.start_frame, s.end_frame) for s in clip_spans(539)] == [(0, 360)]       # tail 179 < 180 dropped
    assert [(s.start_frame, s.end_frame) for s in clip_spans(540)] == [(0, 360), (180, 540)]  # tail 180 kept, full length
    spans = clip_spans(900, stride_seconds=6)
    assert [s.start_frame for s in spans] == [0, 180, 360, 540] and all(s.duration_s == 12.0 for s in spans)
    for n in range(0, 2000, 7):
        for stride in (None, 4.0, 12.0):
            spans = clip_spans(n, stride_seconds=stride)
            assert len(spans) == expected_clip_count(n, stride_seconds=stride)
            assert all(0 <= s.start_frame < s.end_frame <= n for s in spans)
            assert [s.index for s in spans] == list(range(len(spans)))
    with pytest.raises(ValueError):
        clip_spans(100, clip_seconds=0)


def test_split_is_deterministic_and_80_10_10() -> None:
    assert assign_split("npz", "seq_1") == assign_split("npz", "seq_1")
    assert assign_split("bvh", "60_01", group="take01") == assign_split("bvh", "61_01", group="take01")
    counts = Counter(assign_split("demo", f"seq_{i}") for i in range(5000))
    assert set(counts) == {"train", "val", "test"}
    assert abs(counts["train"] / 5000 - 0.8) < 0.03 and abs(counts["val"] / 5000 - 0.1) < 0.02


def test_captions_parse_errors_name_the_line() -> None:
    good = ['{"clip": "s#0", "captions": ["x"]}', "", "// comment",
            '{"sequence": "s", "start": 0, "end": 12, "captions": "y", "tags": {"a": 1}}']
    entries = parse_captions_lines(good, "c.jsonl")
    assert [(e.line, e.clip_index, e.start) for e in entries] == [(1, 0, None), (4, None, 0.0)]
    cases = {
        '{"clip": "s#0", "captions": ["x"]}\n{bad json': "line 2: invalid JSON",
        '{"clip": "s0", "captions": ["x"]}': "line 1: 'clip' must look like",
        '{"sequence": "s", "start": 0, "captions": ["x"]}': "line 1: a 'sequence' line needs",
        '{"sequence": "s", "start": 5, "end": 2, "captions": ["x"]}': "line 1: need 0 <= start < end",
        '{"clip": "s#0", "captions": [1]}': "line 1: 'captions' must be a list of strings",
        '[1, 2]': "line 1: expected a JSON object",
        '{"clip": "s#0"}': "line 1: no 'captions' and no 'tags'",
    }
    for text, expected in cases.items():
        with pytest.raises(InputError) as err:
            parse_captions_lines(text.splitlines(), "c.jsonl")
        assert expected in str(err.value) and "c.jsonl" in str(err.value)


def test_captions_assignment_by_key_and_overlap() -> None:
    spans = clip_spans(900)                                              # [0,12) [12,24) [18,30)
    entries = parse_captions_lines([
        '{"clip": "s#1", "captions": ["one"]}',
        '{"clip": "src/s#0", "captions": ["zero"], "tags": {"t": "v"}}',
        '{"sequence": "s", "start": 11, "end": 26, "captions": ["span"]}',
        '{"clip": "s#9", "captions": ["none"]}',
        '{"clip": "other#0", "captions": ["x"]}',
    ])
    ann, unmatched = assign_captions(entries, "src", "s", spans)
    assert ann[0].captions == ["zero"] and ann[0].tags == {"t": "v"}
    assert ann[1].captions == ["one", "span"]                            # [12,24) inside [11,26)
    assert ann[2].captions == ["span"]                                   # [18,30) overlaps 8 s >= 6 s
    assert [e.clip_index for e in unmatched] == [9]


# --- PostgreSQL round trip (skipped when no server binary or no driver) ------------------------------
def _pg_bin() -> Path | None:
    for cand in [shutil.which("pg_ctl")] + sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True):
        if cand and Path(cand).with_name("initdb").exists():
            return Path(cand).parent
    return None


def _pg_driver() -> str | None:
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2"),
                            ("pg8000", "postgresql+pg8000")):
        try:
            __import__(module)
            return dialect
        except ImportError:
            continue
    return None


@pytest.fixture()
def postgres_url(tmp_path: Path):
    bindir, dialect = _pg_bin(), _pg_driver()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl / initdb)")
    if dialect is None:
        pytest.skip("no PostgreSQL driver installed (pip install 'psycopg[binary]')")
    run_as: list[str] = []
    base = tmp_path
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use the 'postgres' account when present
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
            pytest.skip("running as root and no 'postgres' user to start the server")
        run_as = ["runuser", "-u", "postgres", "--"]
        base = Path(tempfile.mkdtemp(prefix="dspg-"))   # pytest's tmp dirs are 0700 root: postgres cannot enter
        os.chmod(base, 0o777)
    data = base / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-U", "dance", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True)
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "pg.log"), "-w", "-t", "30",
                                 "-o", f"-p {port} -h 127.0.0.1 -k {base}", "start"], check=True, capture_output=True)
        yield f"{dialect}://dance@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True)
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)


def test_postgres_round_trip(postgres_url: str) -> None:
    t0 = time.time()
    cat = Catalog(postgres_url)
    try:
        _fill(cat)
        assert cat.genre_counts() == {"waltz": 3, "salsa": 2, "hiphop": 1}
        assert len(cat.clips(bpm_range=(95, None))) == 2 and len(cat.clips(genres=["waltz"], split="test")) == 3
        clip = cat.clip_by_key("demo/salsa_01#1")
        assert clip is not None and clip.as_dict()["captions"] == ["salsa_01 clip 1", "a dance"]
        ids = [c.id for c in cat.clips(source="demo")]
        again = cat.replace_sequence(_seq("salsa_01"), _clips("salsa_01", 2), content_changed=False)
        assert set(again) <= set(ids)
        assert cat.stats()["tags"] == {"energy": {"high": 3, "low": 3}}
    finally:
        cat.drop_all()
        cat.close()
    assert time.time() - t0 < 60
