"""`dancesearch eval generation` against the catalog's windows, and the real-data floor."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generation.metrics import evaluate_generation
from generation.metrics.catalog_source import window_samples, window_store
from generation.representation import decode
from ui.cli import main


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True, timeout=300)


def test_catalog_windows_as_samples(demo_workspace) -> None:
    store = window_store(demo_workspace.home)
    test = window_samples(store, "test")
    assert len(test) == 2 * 3                                   # two 12-s test clips, 4-s windows, no overlap
    s = test[0]
    assert s.positions.shape == (120, 52, 3) and s.fps == 30.0 and s.meta["split"] == "test"
    assert s.music_beats is not None and len(s.music_beats) >= 4
    np.testing.assert_allclose(s.positions, decode(store.window("test", 0).motion).positions)
    drawn = window_samples(store, "train", limit=4, seed=1)
    assert len(drawn) == 4 and [d.name for d in drawn] == [d.name for d in window_samples(store, "train", 4, 1)]


def test_real_windows_against_themselves_score_zero_fid(demo_workspace) -> None:
    test = window_samples(window_store(demo_workspace.home), "test")
    result = evaluate_generation(test, test, "dancesearch", per_sample=False)
    # sqrtm of a rank-deficient covariance (6 samples, 66 dims) leaves ~1e-5 of numerical noise
    assert abs(result["metrics"]["fid_k"]) < 1e-3 and abs(result["metrics"]["fid_g"]) < 1e-3
    assert result["metrics"]["bas"] == pytest.approx(result["gt_reference"]["bas"])


def test_cli_floor_and_generated_folder(demo_workspace, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = str(demo_workspace.home)
    out = tmp_path / "floor.json"
    rc = main(["eval", "generation", "--home", home, "--split", "test", "--pred-split", "train", "--draws", "2",
               "--protocol", "all", "--out", str(out), "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["protocols"]) == {"bailando-aist", "lodge-finedance", "dancesearch"}
    d = payload["protocols"]["dancesearch"]
    assert d["draws"] == 2 and d["counts"] == {**d["counts"], "pred": 6, "gt": 6}
    assert d["metrics"]["fid_k"]["mean"] > 0 and d["metrics"]["bas"]["mean"] is not None
    assert "Real-data floor" in out.with_suffix(".md").read_text()
    # generated dances saved as the project's motion records score against the same catalog windows
    store = window_store(demo_workspace.home)
    pred = tmp_path / "pred"
    pred.mkdir()
    for i in range(3):
        decode(store.window("train", i).motion).save(pred / f"gen_{i}.npz")
    rc = main(["eval", "generation", "--home", home, "--split", "test", "--pred", str(pred), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["counts"]["pred"] == 3 and res["counts"]["gt"] == 6
    assert res["metrics"]["bas"] is None and any("BAS" in n for n in res["notes"])   # records carry no beats


def test_cli_usage_errors_exit_2(demo_workspace, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = str(demo_workspace.home)

    def run(*args: str) -> tuple[int, str]:
        try:
            rc = main(["eval", "generation", *args])
        except SystemExit as exc:                       # argparse's own usage errors
            rc = exc.code
        return rc, capsys.readouterr().err

    for args in (["--home", home, "--split", "test"],                                     # no predictions
                 ["--home", home, "--split", "test", "--pred-split", "test"],             # same split
                 ["--home", home, "--pred-split", "train", "--gt", str(tmp_path)],        # floor needs --split
                 ["--home", home, "--split", "test", "--pred", str(tmp_path), "--pred-split", "train"]):
        rc, err = run(*args)
        assert rc == 2, (args, err)
        assert "Traceback" not in err
    r = _cli("eval", "generation", "--home", str(tmp_path / "nowhere"), "--split", "test", "--pred-split", "train")
    assert r.returncode == 1 and "no catalog" in r.stderr and "Traceback" not in r.stderr


def test_floor_with_a_small_pool_is_one_draw_with_a_note(demo_workspace, capsys: pytest.CaptureFixture) -> None:
    rc = main(["eval", "generation", "--home", str(demo_workspace.home), "--split", "train", "--pred-split", "test",
               "--draws", "3", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["draws"] == 1 and any("one draw" in n for n in out["notes"])
    assert len(out["metrics"]["fid_k"]["values"]) == 1


def test_motion_genre_classifier_separates_real_windows(demo_workspace) -> None:
    from generation.metrics.genre_control import MotionGenreClassifier, motion_descriptor

    store = window_store(demo_workspace.home)
    train = window_samples(store, "train")
    labels = [s.meta["genre"] for s in train]
    assert len(set(labels)) >= 3
    clf = MotionGenreClassifier.fit(train, labels, epochs=200)
    assert clf.accuracy(train, labels) > 0.9
    assert len(motion_descriptor(train[0])) == 66 + 32 + 90 + 2 * 52 * 3
    # a window's own genre beats chance on an unseen window of the same clip (windows 1 s apart)
    shifted = window_samples(window_store(demo_workspace.home, stride_seconds=2.0), "train")
    odd = [s for s in shifted if s.meta["start"] % 120]
    assert clf.accuracy(odd, [s.meta["genre"] for s in odd]) > 1.5 / len(set(labels))
