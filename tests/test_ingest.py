"""End-to-end ingestion of the generic npz format through the real CLI: real files, real audio, real SQLite."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import smpl24
from indexer.catalog import Catalog
from indexer.cli import get_corpus_subparsers
from indexer.ingest import ingest
from indexer.workspace import Workspace
from ui.cli import main


# --- writers for the real formats -----------------------------------------------------------------
def write_wav(path: Path, seconds: float, sr: int = 22050, bpm: float = 120.0) -> Path:
    """A click track at ``bpm`` over a quiet tone: real audio with a clear tempo."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.05 * np.sin(2 * np.pi * 220.0 * t)
    click = np.hanning(800)[400:] * 0.8
    for beat in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(beat * sr)
        y[i:i + len(click)] += click[: len(y) - i]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y.astype(np.float32), sr)
    return path


def poses_motion(seconds: float, fps: float = 30.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t_count = int(round(seconds * fps))
    rng = np.random.default_rng(seed)
    phase = np.sin(np.linspace(0, 4 * np.pi * seconds / 10, t_count))[:, None, None]
    poses = (0.3 * phase * rng.normal(size=(1, 52, 3))).astype(np.float32)
    trans = np.zeros((t_count, 3), np.float32)
    trans[:, 0] = np.linspace(0, 1, t_count)
    trans[:, 1] = 0.95
    return poses, trans


def positions_motion(seconds: float, fps: float = 30.0) -> tuple[np.ndarray, list[str]]:
    skel = smpl24()
    rest = skel.rest_positions()
    rest[:, 1] -= rest[:, 1].min()
    t_count = int(round(seconds * fps))
    pos = np.repeat(rest[None], t_count, axis=0)
    pos[:, :, 0] += np.sin(np.linspace(0, 10, t_count))[:, None] * 0.3
    return pos.astype(np.float32), list(skel.names)


def write_npz(path: Path, seconds: float, audio: str | None = None, metadata: dict | str | None = None,
              form: str = "poses", fps: float = 30.0, seed: int = 0, **override: object) -> Path:
    arrays: dict[str, object] = {"fps": np.float32(fps)}
    if form == "poses":
        arrays["poses"], arrays["trans"] = poses_motion(seconds, fps, seed)
    else:
        pos, names = positions_motion(seconds, fps)
        arrays["positions"], arrays["joint_names"] = pos, np.asarray(names)
    if audio is not None:
        arrays["audio"] = np.asarray(audio)
    if metadata is not None:
        arrays["metadata"] = np.asarray(metadata if isinstance(metadata, str) else json.dumps(metadata))
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, dict | None, str]:
    code = main(argv)
    out = capsys.readouterr()
    payload = json.loads(out.out) if out.out.strip() else None
    return code, payload, out.err


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("npz_corpus")
    write_wav(d / "music" / "a.wav", 30.0, bpm=120)
    write_npz(d / "a.npz", 30.0, audio="music/a.wav",
              metadata={"genre": "Waltz", "dancer": "d01", "split": "test", "captions": ["a slow waltz"],
                        "tags": {"energy": "low"}})
    write_npz(d / "b.npz", 20.0, form="positions", metadata={"genre": "salsa", "bpm": 180})
    (d / "captions.jsonl").write_text("\n".join(json.dumps(o) for o in [
        {"clip": "a#1", "captions": ["turning around"], "tags": {"level": "hard"}},
        {"sequence": "b", "start": 8, "end": 20, "captions": ["quick steps"]},
        {"clip": "zzz#0", "captions": ["names no ingested clip"]},
    ]) + "\n")
    return d


@pytest.fixture(scope="module")
def ingested(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict, str]:
    """The corpus ingested once through the real CLI (module scope: capsys is function-scoped)."""
    home = tmp_path_factory.mktemp("home")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["ingest", "npz", str(corpus_dir), "--home", str(home), "--json"])
    payload = json.loads(out.getvalue())
    payload["_code"] = code
    return Workspace(home), payload, err.getvalue()


def test_npz_ingest_end_to_end(ingested: tuple[Workspace, dict, str]) -> None:
    ws, payload, err = ingested
    assert payload == {"sequences": 2, "clips": 5, "unchanged": 0, "failed": [], "_code": 0}
    assert "zzz" in err and "warning" in err                               # unmatched caption line is reported
    cat = Catalog(ws.db_url)
    clips = {c.key: c for c in cat.clips()}
    assert sorted(clips) == ["npz/a#0", "npz/a#1", "npz/a#2", "npz/b#0", "npz/b#1"]
    a0, a1, a2, b1 = clips["npz/a#0"], clips["npz/a#1"], clips["npz/a#2"], clips["npz/b#1"]
    assert (a2.start_frame, a2.end_frame) == (540, 900) and (b1.start_frame, b1.end_frame) == (240, 600)
    assert all(c.duration_s == 12.0 for c in clips.values())
    assert a0.genre == "waltz" and a0.dancer == "d01" and a0.split == "test" and b1.genre == "salsa"
    assert a0.bpm == pytest.approx(120, abs=2)                            # from the music analysis
    assert b1.bpm == 180                                                  # from the metadata
    assert a1.caption_texts == ["a slow waltz", "turning around"] and a0.caption_texts == ["a slow waltz"]
    assert a1.tags == {"energy": "low", "level": "hard"} and a0.tags == {"energy": "low"}
    assert b1.caption_texts == ["quick steps"] and clips["npz/b#0"].caption_texts == []
    origins = {(c.text, c.origin) for c in a1.captions}
    assert origins == {("a slow waltz", "metadata"), ("turning around", "file")}
    # media files: motion record, (T, 35) features and the audio segment
    rec = MotionRecord.load(ws.resolve(a2.motion_path))
    assert rec.fps == 30 and rec.num_frames == 360 and rec.rotations_6d is not None
    feats = np.load(ws.resolve(a2.music_path))
    assert feats.shape == (360, 35) and feats.dtype == np.float32 and np.isfinite(feats).all()
    info = sf.info(str(ws.resolve(a2.audio_path)))
    assert info.format == "OGG" and info.duration == pytest.approx(12.0, abs=0.05)
    assert b1.music_path is None and b1.audio_path is None and ws.resolve(b1.motion_path).is_file()
    seq = cat.sequence("npz", "a")
    assert seq.has_audio and seq.num_frames == 900 and seq.meta["trimmed_frames"] == 0
    cat.close()


def test_reingest_is_idempotent_and_keeps_ids(corpus_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus_dir, data)
    ws = Workspace(tmp_path / "home")
    first = ingest(ws, "npz", data, progress=False)
    assert (first.sequences, first.clips, first.failed) == (2, 5, [])
    cat = Catalog(ws.db_url)
    ids = {c.key: c.id for c in cat.clips()}
    again = ingest(ws, "npz", data, progress=False)
    assert (again.sequences, again.clips, again.unchanged) == (2, 5, 2)
    assert {c.key: c.id for c in cat.clips()} == ids and cat.stats()["sequences"] == 2
    assert sum(len(v) for v in cat.captions_for(ids.values()).values()) == 5     # no duplicated captions
    # a changed motion file: its clips get new ids, the other sequence keeps its ids
    write_npz(data / "b.npz", 20.0, form="positions", metadata={"genre": "salsa", "bpm": 180}, fps=60.0)
    changed = ingest(ws, "npz", data, progress=False)
    after = {c.key: c.id for c in cat.clips()}
    assert changed.unchanged == 1 and set(after) == set(ids)
    assert all(after[k] == ids[k] for k in ids if k.startswith("npz/a#"))
    assert all(after[k] > max(ids.values()) for k in ids if k.startswith("npz/b#"))
    # a deleted media file is written again
    lost = ws.resolve(cat.clip_by_key("npz/a#1").audio_path)
    lost.unlink()
    fixed = ingest(ws, "npz", data, progress=False)
    assert lost.is_file() and fixed.unchanged == 1 and {c.key: c.id for c in cat.clips()} == after
    # a shorter clip length re-cuts: stale media are removed, clip count follows
    recut = ingest(ws, "npz", data, clip_seconds=25.0, progress=False)   # a: [0, 25) s; b (20 s): one 20-s clip
    assert recut.clips == 2 and len(cat.clips()) == 2
    assert cat.clip_by_key("npz/b#0").duration_s == 20.0
    assert sorted(p.name for p in ws.sequence_media_dir("npz", "a").iterdir()) == ["0.motion.npz", "0.music.npy", "0.ogg"]
    cat.close()


def test_bad_inputs_are_reported_per_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "mixed"
    write_wav(d / "good.wav", 12.5)
    write_npz(d / "good.npz", 13.0, audio="good.wav", metadata={"genre": "tango"})   # music 0.5 s shorter: trimmed
    write_npz(d / "good_positions.npz", 14.0, form="positions")
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    pos, names = positions_motion(13.0)
    write_npz(d / "badshape.npz", 13.0, form="positions", positions=pos[:, :, :2])
    poses, trans = poses_motion(13.0)
    poses[5, 3, 1] = np.nan
    write_npz(d / "nan.npz", 13.0, poses=poses)
    write_npz(d / "noaudio.npz", 13.0, audio="missing.wav")
    write_wav(d / "short_music.wav", 6.0)
    write_npz(d / "mismatch.npz", 13.0, audio="short_music.wav")
    write_npz(d / "tooshort.npz", 3.0)
    write_npz(d / "badmeta.npz", 13.0, metadata="{not json")
    write_npz(d / "badsplit.npz", 13.0, metadata={"split": "dev"})
    np.savez(d / "nofps.npz", poses=poses_motion(13.0)[0], trans=trans)
    np.savez(d / "pickled.npz", fps=np.float32(30), poses=poses_motion(13.0)[0], trans=trans,
             metadata=np.array([{"genre": "x"}], dtype=object))
    home = tmp_path / "home"
    code, payload, err = run_cli(["ingest", "npz", str(d), "--home", str(home), "--json"], capsys)
    assert code == 1
    assert set(payload) == {"sequences", "clips", "unchanged", "failed"}
    assert payload["sequences"] == 2 and payload["clips"] == 2
    reasons = {Path(f["path"]).name: f["reason"] for f in payload["failed"]}
    expected = {
        "corrupt.npz": "cannot read npz",
        "badshape.npz": "field 'positions'",
        "nan.npz": "NaN",
        "noaudio.npz": "audio file not found",
        "mismatch.npz": "motion is 13.00 s but its music short_music.wav is 6.00 s",
        "tooshort.npz": "too short",
        "badmeta.npz": "field 'metadata'",
        "badsplit.npz": "unknown split",
        "nofps.npz": "field 'fps'",
        "pickled.npz": "Python-object arrays",
    }
    assert set(reasons) == set(expected), reasons
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    cat = Catalog(Workspace(home).db_url)
    seq = cat.sequence("npz", "good")
    assert seq.num_frames == 375 and seq.meta["trimmed_frames"] == 15 and seq.genre == "tango"
    assert {c.key for c in cat.clips()} == {"npz/good#0", "npz/good_positions#0"}
    cat.close()
    # the human summary names the failed files too
    code, _, err = run_cli(["ingest", "npz", str(d), "--home", str(home)], capsys)
    assert code == 1 and "corrupt.npz" in err and "failed" in err


def test_usage_errors_and_bad_captions_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "mocap", str(tmp_path), "--home", str(tmp_path / "h")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "npz"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "npz", str(tmp_path), "--clip-seconds", "0"])
    assert exc.value.code == 2
    capsys.readouterr()
    code, _, err = run_cli(["ingest", "npz", str(tmp_path / "absent"), "--home", str(tmp_path / "h")], capsys)
    assert code == 2 and "does not exist" in err
    caps = tmp_path / "caps.jsonl"
    caps.write_text('{"clip": "a#0", "captions": ["ok"]}\n{"clip": "a#1", "captions": "x"')
    write_npz(tmp_path / "d" / "a.npz", 13.0)
    code, _, err = run_cli(["ingest", "npz", str(tmp_path / "d"), "--home", str(tmp_path / "h"),
                            "--captions", str(caps)], capsys)
    assert code == 1 and "caps.jsonl" in err and "line 2" in err
    code, _, err = run_cli(["ingest", "finedance", str(tmp_path / "d"), "--home", str(tmp_path / "h")], capsys)
    assert code == 1 and "no 'motion/' sub-folder" in err


def test_captions_option_clip_options_and_stats(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "d"
    write_npz(d / "s.npz", 24.0, metadata={"genre": "jive", "tags": {"energy": "high"}})
    caps = tmp_path / "caps.jsonl"
    caps.write_text(json.dumps({"sequence": "s", "start": 0, "end": 9, "captions": ["opening"], "tags": {"part": "intro"}}))
    home = tmp_path / "home"
    code, payload, _ = run_cli(["ingest", "npz", str(d), "--home", str(home), "--json", "--captions", str(caps),
                                "--clip-seconds", "6", "--stride-seconds", "3", "--source", "mine"], capsys)
    assert code == 0 and payload == {"sequences": 1, "clips": 7, "unchanged": 0, "failed": []}      # starts 0,3,...,18
    code, stats, _ = run_cli(["corpus", "stats", "--home", str(home), "--json"], capsys)
    assert code == 0
    assert {"clips", "genres", "splits", "sources", "tags"} <= set(stats)
    assert stats["clips"] == 7 and stats["genres"] == {"jive": 7} and stats["sources"] == {"mine": 7}
    assert sum(stats["splits"].values()) == 7 and len(stats["splits"]) == 1
    # [0,9] covers >= half of the clips starting at 0 and 3 ([0,6), [3,9)) and half of [6,12)
    assert stats["tags"] == {"energy": {"high": 7}, "part": {"intro": 3}}
    assert main(["corpus", "stats", "--home", str(home)]) == 0
    human = capsys.readouterr().out
    assert "7 clips in 1 sequences" in human and "jive" in human and "intro" in human


def test_corpus_group_is_shareable() -> None:
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers(dest="command")
    from indexer import cli

    cli.register(sub)
    group = get_corpus_subparsers(sub)
    assert group is get_corpus_subparsers(sub) and "stats" in group.choices
    demo = group.add_parser("demo")
    demo.set_defaults(handler="demo-handler")
    assert parser.parse_args(["corpus", "demo"]).handler == "demo-handler"
    assert parser.parse_args(["corpus", "stats"]).handler is cli.cmd_corpus_stats
