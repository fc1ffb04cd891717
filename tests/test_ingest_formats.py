"""FineDance and AIST++ adapters on small files written in the real formats (.npy, .pkl, wav)."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from encoders.motion.record import MotionRecord
from encoders.motion.rotations import axis_angle_to_rot6d
from indexer.catalog import Catalog
from indexer.ingest import ingest
from indexer.sources.aistpp import music_bpm, parse_name
from indexer.sources.finedance import finedance_split
from indexer.workspace import Workspace
from ui.cli import main


def write_wav(path: Path, seconds: float, sr: int = 22050) -> None:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.05 * np.sin(2 * np.pi * 330.0 * t)
    for beat in np.arange(0.0, seconds, 0.5):
        i = int(beat * sr)
        y[i:i + 300] += 0.6 * np.hanning(600)[300:][: len(y) - i]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y.astype(np.float32), sr)


def finedance_rows(seconds: float, seed: int = 0) -> np.ndarray:
    """(T, 315) FineDance rows: root translation + 52 row-convention 6D rotations."""
    t_count = int(round(seconds * 30))
    rng = np.random.default_rng(seed)
    aa = 0.25 * np.sin(np.linspace(0, 8, t_count))[:, None, None] * rng.normal(size=(1, 52, 3))
    rot6d = np.asarray(axis_angle_to_rot6d(aa.astype(np.float32))).reshape(t_count, 312)
    trans = np.stack([np.linspace(0, 1, t_count), np.full(t_count, 0.9), np.zeros(t_count)], axis=1)
    return np.concatenate([trans, rot6d], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def finedance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("finedance")
    rows = finedance_rows(13.0)
    np.save(d / "motion_tmp.npy", rows)
    (d / "motion").mkdir()
    (d / "motion_tmp.npy").rename(d / "motion" / "001.npy")
    contacts = np.zeros((len(rows), 4), np.float32)
    np.save(d / "motion" / "012.npy", np.concatenate([contacts, rows], axis=1))      # (T, 319): contacts first
    np.save(d / "motion" / "116.npy", finedance_rows(13.0, seed=1))
    np.save(d / "motion" / "050.npy", rows[:, :300])                                   # wrong shape
    np.save(d / "motion" / "051.npy", rows)                                            # no music
    nan_rows = rows.copy()
    nan_rows[10, 7] = np.inf
    np.save(d / "motion" / "052.npy", nan_rows)
    (d / "motion" / "053.npy").write_bytes(b"\x93NUMPY garbage")                       # corrupt
    for name in ("001", "012", "116", "050", "052", "053"):
        write_wav(d / "music_wav" / f"{name}.wav", 13.0)
    labels = [{"name": "song", "style1": "Mix", "style2": "Korean", "frames": 390, "filename": "001"},
              {"name": "song2", "style1": "Street", "style2": "Hiphop", "frames": 390, "filename": "012"},
              {"name": "song3", "style1": "Classic", "style2": "ShenYun", "frames": 390, "filename": "116"}]
    (d / "dance_lable_data.json").write_text(json.dumps(labels))
    return d


def test_finedance_split_asset() -> None:
    assert finedance_split("012") == "test" and finedance_split("130") == "test"
    assert finedance_split("116") == "val" and finedance_split("120") == "test"
    assert finedance_split("001") == "train" and finedance_split("unknown_name") == "train"


def test_finedance_ingest(finedance_dir: Path, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    report = ingest(ws, "finedance", finedance_dir, progress=False)
    reasons = {Path(f["path"]).name: f["reason"] for f in report.failed}
    assert set(reasons) == {"050.npy", "051.npy", "052.npy", "053.npy"}, reasons
    assert "(T, 315)" in reasons["050.npy"] and "(390, 300)" in reasons["050.npy"]
    assert "missing music" in reasons["051.npy"] and "music_wav/051.wav" in reasons["051.npy"]
    assert "NaN or infinite" in reasons["052.npy"] and "cannot read" in reasons["053.npy"]
    assert (report.sequences, report.clips) == (3, 3)
    cat = Catalog(ws.db_url)
    clips = {c.key: c for c in cat.clips()}
    assert set(clips) == {"finedance/001#0", "finedance/012#0", "finedance/116#0"}
    assert clips["finedance/001#0"].genre == "korean" and clips["finedance/001#0"].split == "train"
    assert clips["finedance/012#0"].genre == "hiphop" and clips["finedance/012#0"].split == "test"
    assert clips["finedance/116#0"].split == "val" and clips["finedance/116#0"].tags == {"style": "classic"}
    assert all(c.bpm == pytest.approx(120, abs=3) and c.duration_s == 12.0 for c in clips.values())
    # the (T, 319) file holds the same motion after its 4 contact columns
    a = MotionRecord.load(ws.resolve(clips["finedance/001#0"].motion_path))
    b = MotionRecord.load(ws.resolve(clips["finedance/012#0"].motion_path))
    assert a.num_frames == 360 and len(a.joint_names) == 52 and a.rotations_6d.shape == (360, 52, 6)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-3)
    assert np.allclose(a.trans[0], [0, 0.9, 0], atol=1e-3)
    seq = cat.sequence("finedance", "001")
    assert seq.meta["label_name"] == "song" and seq.has_audio
    cat.close()


def smpl_pkl(seconds: float, fps: float = 60.0, scaling: float = 93.5) -> dict:
    t_count = int(round(seconds * fps))
    rng = np.random.default_rng(3)
    poses = (0.2 * np.sin(np.linspace(0, 10, t_count))[:, None] * rng.normal(size=(1, 72))).astype(np.float32)
    trans = np.stack([np.linspace(0, 50, t_count), np.full(t_count, 0.9 * scaling), np.zeros(t_count)], 1)
    return {"smpl_loss": np.float64(1.2), "smpl_poses": poses, "smpl_scaling": np.array([scaling], np.float32),
            "smpl_trans": trans.astype(np.float32)}


class _Evil:
    def __reduce__(self):  # what a hostile pickle does: call a function on load
        return (os.system, ("echo pwned > /dev/null",))


@pytest.fixture(scope="module")
def aist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("aistpp")
    (d / "motions").mkdir()
    for name in ("gBR_sBM_cAll_d04_mBR0_ch01", "gHO_sFM_cAll_d19_mHO3_ch05"):
        with open(d / "motions" / f"{name}.pkl", "wb") as fh:
            pickle.dump(smpl_pkl(13.0), fh)
    with open(d / "motions" / "gKR_sBM_cAll_d30_mKR2_ch02.pkl", "wb") as fh:            # music missing
        pickle.dump(smpl_pkl(13.0), fh)
    bad = smpl_pkl(13.0)
    bad["smpl_poses"] = bad["smpl_poses"][:, :70]
    with open(d / "motions" / "gJS_sBM_cAll_d01_mJS3_ch02.pkl", "wb") as fh:            # wrong shape
        pickle.dump(bad, fh)
    with open(d / "motions" / "gLH_sBM_cAll_d18_mLH4_ch02.pkl", "wb") as fh:            # hostile pickle
        pickle.dump({"smpl_poses": _Evil()}, fh)
    for music in ("mBR0", "mHO3", "mJS3", "mLH4"):
        write_wav(d / "music" / f"{music}.wav", 13.0)
    return d


def test_aist_name_parsing() -> None:
    p = parse_name("gBR_sBM_cAll_d04_mBR0_ch01")
    assert p is not None and (p.genre, p.dancer, p.music_id, p.bpm) == ("break", "d04", "mBR0", 80.0)
    h = parse_name("gHO_sFM_cAll_d19_mHO3_ch05")
    assert (h.genre, h.bpm, h.situation) == ("house", 125.0, "advanced")
    assert parse_name("gLH_sBM_c01_d18_mLH4_ch02").bpm == 120.0 and parse_name("gLH_sBM_c01_d18_mLH4_ch02").genre == "la hip-hop"
    assert parse_name("gJB_sBM_cAll_d09_mJB5_ch10").bpm == 130.0
    assert music_bpm("HO", 0) == 110.0 and music_bpm("PO", 5) == 130.0
    assert parse_name("my_dance") is None and parse_name("gBR_sBM_cAll_d04_mBR0") is None


def test_aistpp_ingest(aist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    code = main(["ingest", "aistpp", str(aist_dir), "--home", str(home), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1 and payload["sequences"] == 2 and payload["clips"] == 2
    reasons = {Path(f["path"]).name: f["reason"] for f in payload["failed"]}
    assert set(reasons) == {"gKR_sBM_cAll_d30_mKR2_ch02.pkl", "gJS_sBM_cAll_d01_mJS3_ch02.pkl",
                            "gLH_sBM_cAll_d18_mLH4_ch02.pkl"}
    assert "music/mKR2.wav" in reasons["gKR_sBM_cAll_d30_mKR2_ch02.pkl"]
    assert "(T, 72)" in reasons["gJS_sBM_cAll_d01_mJS3_ch02.pkl"]
    assert "refusing" in reasons["gLH_sBM_cAll_d18_mLH4_ch02.pkl"]
    cat = Catalog(Workspace(home).db_url)
    br = cat.clip_by_key("aistpp/gBR_sBM_cAll_d04_mBR0_ch01#0")
    ho = cat.clip_by_key("aistpp/gHO_sFM_cAll_d19_mHO3_ch05#0")
    assert (br.genre, br.dancer, br.bpm) == ("break", "d04", 80.0)               # BPM from the name, not the analysis
    assert (ho.genre, ho.dancer, ho.bpm, ho.tags) == ("house", "d19", 125.0, {"situation": "advanced"})
    assert br.split in ("train", "val", "test") and br.duration_s == 12.0
    rec = MotionRecord.load(Workspace(home).resolve(br.motion_path))
    assert rec.fps == 30 and rec.num_frames == 360                               # 60 fps resampled
    assert rec.trans[0, 1] == pytest.approx(0.9, abs=1e-3)                       # smpl_trans / smpl_scaling
    assert np.load(Workspace(home).resolve(br.music_path)).shape == (360, 35)
    cat.close()
