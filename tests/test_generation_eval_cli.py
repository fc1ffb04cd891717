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


def test_the_control_classifier_explains_its_verdicts_by_descriptor_group(demo_workspace) -> None:
    import torch

    from encoders.errors import InputError
    from generation.metrics.genre_control import (DESCRIPTOR_GROUPS, WITHOUT_POSTURE, MotionGenreClassifier,
                                                  descriptor_parts, descriptor_slices, motion_descriptor)

    train = window_samples(window_store(demo_workspace.home), "train")
    labels = [s.meta["genre"] for s in train]
    clf = MotionGenreClassifier.fit(train, labels, epochs=100)
    sample = train[0]
    slices = descriptor_slices(sample)
    parts = descriptor_parts(sample)
    assert list(slices) == list(DESCRIPTOR_GROUPS)
    for g, sl in slices.items():                         # the slices find each part in the full descriptor
        np.testing.assert_array_equal(motion_descriptor(sample)[sl], parts[g])
    # the groups' shares plus the bias difference are the logit difference
    wanted, other = clf.genres[0], clf.genres[1]
    gaps = clf.logit_gap_by_group(sample, wanted, other)
    logits = torch.as_tensor(clf.standardised([sample]), dtype=torch.float32) @ clf.weight + clf.bias
    i, j = clf.genres.index(wanted), clf.genres.index(other)
    assert sum(gaps.values()) + float(clf.bias[i] - clf.bias[j]) == pytest.approx(float(logits[0, i] - logits[0, j]),
                                                                                  abs=1e-3)
    with pytest.raises(InputError, match="genre"):
        clf.logit_gap_by_group(sample, "foxtrot", other)
    # the second judge reads no posture statistics and still tells the genres apart
    blind = MotionGenreClassifier.fit(train, labels, epochs=100, groups=WITHOUT_POSTURE)
    assert blind.groups == WITHOUT_POSTURE and blind.weight.shape[0] == len(motion_descriptor(sample, WITHOUT_POSTURE))
    assert set(blind.logit_gap_by_group(sample, wanted, other)) == set(WITHOUT_POSTURE)
    assert blind.accuracy(train, labels) > 3.0 / len(set(labels))
    with pytest.raises(InputError, match="descriptor groups"):
        MotionGenreClassifier.fit(train, labels, groups=("posture",))


def test_the_suite_can_leave_the_physical_metrics_to_its_caller(demo_workspace) -> None:
    from generation.metrics.protocols import get_protocol
    from generation.metrics.jerk import mean_jerk
    from generation.metrics.suite import physical_metrics, physical_set_metrics

    real = window_samples(window_store(demo_workspace.home), "test")[:6]
    pred, gt = real[:3], real[3:]
    without = evaluate_generation(pred, gt, with_physical=False, per_sample=False)
    full = evaluate_generation(pred, gt, per_sample=False)
    assert without["physical"] == {} and full["physical"]
    assert without["metrics"] == full["metrics"]
    proto = get_protocol("dancesearch")
    gt_only = physical_set_metrics(gt, proto, [], "gt")
    assert gt_only == {k: v["gt"] for k, v in physical_metrics(pred, gt, proto, []).items()}
    assert gt_only["jerk"] == pytest.approx(float(np.mean([mean_jerk(s) for s in gt])))      # the module's own value
    assert full["physical"]["jerk"]["pred"] == pytest.approx(float(np.mean([mean_jerk(s) for s in pred])))
