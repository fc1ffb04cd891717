"""Issue 18: the command line is honest about bad values, busy ports, missing workspaces and refusing disks.

Each test drives the real ``dancesearch`` entry point (``ui.cli.main``) on real files. Where a real
full or read-only file system cannot be had without root-only tricks (loop mounts), the disk error is
injected at the single write helper every engine write goes through, ``encoders.atomic_io._write_all``
(said again in each such test); ``/sys`` (refuses mkdir with EPERM) and ``/dev/full`` (ENOSPC) are used
where a real refusal is possible.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import tomllib
from pathlib import Path

import numpy as np
import pytest

import encoders.atomic_io as atomic_io
from indexer.catalog import Catalog, ClipRow, SequenceRow
from indexer.index import load_index
from indexer.index.builder import build_or_update
from indexer.workspace import Workspace
from search_support import WordEmbedder, make_workspace   # tests/ is on sys.path
from test_ingest import write_npz
from ui.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command; argparse's own exits count as exit codes."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def indexed_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real workspace with a FAISS index built by the word embedder, which ``load_embedder`` then returns."""
    ws = make_workspace(tmp_path / "home", clips_per_genre=3)
    build_or_update(ws, WordEmbedder())
    monkeypatch.setattr("indexer.index.embedder.load_embedder", lambda *a, **k: WordEmbedder())
    return ws.home


# --- item 10: usage errors exit 2 ------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--offset", "-1", "waltz"], "offset must be within 0..1000"),
    (["--bpm-min", "nan", "waltz"], "must be a finite number"),
    (["--bpm-max", "inf", "waltz"], "must be a finite number"),
    (["--bpm-min", "150", "--bpm-max", "100", "waltz"], "--bpm-min 150 is above --bpm-max 100"),
    (["   "], "give a query TEXT"),
    ([], "give a query TEXT"),
    (["waltz", "--genre", "polka"], "unknown genre 'polka'"),
])
def test_search_rejects_bad_values_as_usage_errors(indexed_home: Path, capsys: pytest.CaptureFixture,
                                                   argv: list[str], message: str) -> None:
    code, out, err = run(["search", "--home", str(indexed_home), *argv], capsys)
    assert code == 2, err
    assert message in err and "Traceback" not in err and out == ""


def test_search_still_works_and_names_known_genres(indexed_home: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(["search", "--home", str(indexed_home), "slow waltz", "--genre", "waltz", "--json"], capsys)
    assert code == 0, err
    body = json.loads(out)
    assert body["results"] and {r["genre"] for r in body["results"]} == {"waltz"}
    code, _, err = run(["search", "--home", str(indexed_home), "x", "--genre", "polka"], capsys)
    assert code == 2 and "waltz" in err          # the message lists what exists


def test_cli_limits_match_the_search_engine() -> None:
    from indexer import index_cli
    from indexer.index import service

    assert index_cli._MAX_QUERY_CHARS == service.MAX_QUERY_CHARS
    assert index_cli._OFFSET(str(service.MAX_OFFSET)) == service.MAX_OFFSET


def test_serve_refuses_a_busy_port_before_announcing_itself(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, out, err = run(["serve", "--home", str(tmp_path / "h"), "--port", str(port)], capsys)
    assert code == 1
    assert f"port {port} is in use" in err and "DanceSearch API on" not in err + out and "Traceback" not in err


def test_corpus_stats_refuses_a_missing_workspace(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    typo = tmp_path / "no_such_home"
    code, out, err = run(["corpus", "stats", "--home", str(typo)], capsys)
    assert code == 1 and "no catalog at" in err and "ingest" in err
    assert not typo.exists()                     # nothing created behind the user's back


def test_corpus_stats_bins_bpm_values(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ws = Workspace(tmp_path / "home").ensure()
    cat = ws.catalog()
    for i in range(60):                          # 60 distinct BPM tag values, 70.0 .. 129.0
        cat.replace_sequence(SequenceRow("demo", f"s{i}", None, "waltz", None, 30.0, 360, 70.0 + i, False, "train"),
                             [ClipRow(0, 0, 360, 12.0, f"media/demo/s{i}/0.motion.npz", None, None,
                                      {"bpm": 70.0 + i, "energy": "low"})], content_changed=False)
    cat.close()
    code, out, err = run(["corpus", "stats", "--home", str(ws.home)], capsys)
    assert code == 0, err
    bpm_rows = [line for line in out.splitlines() if line.strip(" │|").startswith("bpm")]
    assert len(bpm_rows) == 6, out               # 70-79 ... 120-129, not 60 rows
    assert any("100-109 (medium)" in r for r in bpm_rows) and any("120-129 (medium/fast)" in r for r in bpm_rows)
    code, out, _ = run(["corpus", "stats", "--home", str(ws.home), "--json"], capsys)
    assert len(json.loads(out)["tags"]["bpm"]) == 60   # the JSON keeps every value


# --- item 10: captions of a single ingested file --------------------------------------------------------
def _folder_with_captions(d: Path, names: list[str]) -> Path:
    for i, n in enumerate(names):
        write_npz(d / f"{n}.npz", 13.0, seed=i, metadata={"genre": "tango"})
    (d / "captions.jsonl").write_text("".join(json.dumps({"clip": f"{n}#0", "captions": [f"caption of {n}"]}) + "\n"
                                              for n in names))
    return d


def test_ingesting_one_file_of_a_folder_warns_only_about_its_own_captions(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    d = _folder_with_captions(tmp_path / "corpus", ["a", "b", "c", "d"])
    code, out, err = run(["ingest", "npz", str(d / "b.npz"), "--home", str(tmp_path / "h"), "--json",
                          "--workers", "1"], capsys)
    assert code == 0 and json.loads(out)["sequences"] == 1
    assert "warning" not in err, err             # before: one warning per other sequence's caption line
    cat = Catalog(Workspace(tmp_path / "h").db_url)
    assert cat.clip_by_key("npz/b#0").caption_texts == ["caption of b"]
    cat.close()


def test_caption_lines_of_failed_sequences_are_not_warned_about(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    d = _folder_with_captions(tmp_path / "corpus", ["a", "b"])
    (d / "b.npz").write_bytes(b"PK\x03\x04 not a zip")
    code, out, err = run(["ingest", "npz", str(d), "--home", str(tmp_path / "h"), "--json", "--workers", "1"], capsys)
    payload = json.loads(out)
    assert code == 1 and [Path(f["path"]).name for f in payload["failed"]] == ["b.npz"]
    assert "warning" not in err, err             # the failure is the news, not its caption line


# --- item 5: disks that refuse writes ----------------------------------------------------------------
def _refuse_writes_after(monkeypatch: pytest.MonkeyPatch, ok_writes: int, err: int) -> list[int]:
    """Make ``encoders.atomic_io._write_all`` (every engine write) fail with ``err`` after ``ok_writes`` writes."""
    real = atomic_io._write_all
    count = [0]

    def write_all(tmp: Path, data: bytes) -> None:
        count[0] += 1
        if count[0] > ok_writes:
            raise OSError(err, os.strerror(err), str(tmp))
        real(tmp, data)

    monkeypatch.setattr(atomic_io, "_write_all", write_all)
    return count


def _leftovers(home: Path) -> list[str]:
    """Temporary files and empty folders under ``home``."""
    out = [str(p) for p in home.rglob("*") if p.is_file() and ".tmp" in p.name]
    out += [str(p) for p in home.rglob("*") if p.is_dir() and not any(p.iterdir()) and p.name != "features"]
    return out


def test_ingest_on_a_full_disk_stops_with_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    """ENOSPC injected at encoders.atomic_io._write_all (no real full file system without a loop mount)."""
    d = tmp_path / "corpus"
    for i in range(6):
        write_npz(d / f"s{i}.npz", 13.0, seed=i, metadata={"genre": "tango"})   # one motion file per sequence
    home = tmp_path / "home"
    calls = _refuse_writes_after(monkeypatch, ok_writes=2, err=errno.ENOSPC)
    code, out, err = run(["ingest", "npz", str(d), "--home", str(home), "--workers", "1"], capsys)
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "No space left on device (ENOSPC)" in errors[0] and str(home / "media") in errors[0]
    assert "2 of 6 sequences done" in errors[0]
    assert "warning" not in err and "failed:" not in err
    assert calls[0] == 3                         # stopped at the first refused write, not 4 more failures
    assert _leftovers(home) == []                # no half-made media folder, no temp file
    assert sorted(p.name for p in (home / "media" / "npz").iterdir()) == ["s0", "s1"]
    monkeypatch.undo()                           # space freed: the same command finishes the job
    code, out, err = run(["ingest", "npz", str(d), "--home", str(home), "--workers", "1", "--json"], capsys)
    assert code == 0 and json.loads(out) == {"sequences": 6, "clips": 6, "unchanged": 2, "failed": []}


def test_ingest_into_an_unwritable_home_is_one_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A real refusal: /sys does not let anyone (root included) create folders (EPERM)."""
    d = tmp_path / "corpus"
    write_npz(d / "a.npz", 13.0)
    code, out, err = run(["ingest", "npz", str(d), "--home", "/sys/dancesearch_home"], capsys)
    assert code == 1 and "Traceback" not in err and out == ""
    assert err.startswith("error: cannot write /sys/dancesearch_home") and "(EPERM)" in err


@pytest.mark.parametrize("err_no, name", [(errno.EROFS, "EROFS"), (errno.ENOSPC, "ENOSPC"), (errno.EACCES, "EACCES")])
def test_index_build_on_a_refusing_disk_keeps_the_live_index(indexed_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture, err_no: int,
                                                             name: str) -> None:
    """The refusal is injected at encoders.atomic_io._write_all (the read-only / full disk)."""
    index_dir = indexed_home / "indexes" / "default"
    before = json.loads((index_dir / "manifest.json").read_text())
    _refuse_writes_after(monkeypatch, ok_writes=0, err=err_no)
    code, out, err = run(["index", "build", "--home", str(indexed_home), "--rebuild"], capsys)
    assert code == 1 and "Traceback" not in err and out == ""
    assert err.startswith("error: cannot write ") and f"({name})" in err and str(index_dir) in err
    assert _leftovers(indexed_home) == []
    assert json.loads((index_dir / "manifest.json").read_text()) == before
    assert len(load_index(index_dir, WordEmbedder.model_id).index) == before["count"]


def test_faiss_index_file_write_reports_a_full_device(tmp_path: Path) -> None:
    """/dev/full is a real device that answers every write with ENOSPC; FAISS' own writer only printed it."""
    from indexer.index import ClipAttributes, FaissIndex

    idx = FaissIndex("flat", 8)
    idx.add(np.eye(8, dtype=np.float32)[:4], ClipAttributes.from_rows([1, 2, 3, 4], ["a"] * 4, [90.0] * 4,
                                                                       ["train"] * 4, ["demo"] * 4))
    with pytest.raises(OSError) as exc:
        idx.write_index_file(Path("/dev/full"))
    assert exc.value.errno == errno.ENOSPC
    assert atomic_io.storage_error(exc.value) is not None


def test_a_write_leaving_no_free_block_is_not_renamed_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """C writers (libsndfile) swallow ENOSPC; a file system with no free block after the write is reported."""
    monkeypatch.setattr(atomic_io, "_disk_is_full", lambda folder: True)
    with pytest.raises(atomic_io.StorageError) as exc:
        atomic_io.atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert exc.value.errno == errno.ENOSPC and not any(tmp_path.iterdir())


# --- item 11: file modes, packaging -----------------------------------------------------------------------
def test_index_files_get_the_umask_mode_like_every_other_file(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ws = make_workspace(tmp_path / "home", clips_per_genre=2)
        build_or_update(ws, WordEmbedder())
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (ws.home / "indexes" / "default").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_pyproject_uses_an_spdx_license_string() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in meta["project"].get("classifiers", []))
    assert "setuptools>=77" in meta["build-system"]["requires"]   # the first setuptools that reads PEP 639 strings


def test_a_full_sqlite_catalog_is_a_storage_failure(tmp_path: Path) -> None:
    """A real SQLITE_FULL: ``PRAGMA max_page_count`` caps the database file, as a full disk would."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    from indexer.ingest import storage_failure

    ws = Workspace(tmp_path / "home").ensure()
    engine = create_engine(ws.db_url)
    with pytest.raises(DBAPIError) as exc:
        with engine.begin() as conn:
            conn.execute(text("PRAGMA max_page_count = 4"))
            conn.execute(text("CREATE TABLE t (x TEXT)"))
            for _ in range(1000):
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "y" * 1000})
    engine.dispose()
    err = storage_failure(exc.value, ws)
    assert err is not None and err.errno == errno.ENOSPC and str(ws.catalog_path) in str(err)
