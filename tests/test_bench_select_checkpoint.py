"""bench/select_checkpoint.py: snapshots of a run sampled on the val split, ranked by the fixed rule, the chosen
one exported as a run of its own."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench.select_checkpoint import candidate_list, choose, main, mean_ranks


def _row(step: int, fid_k: float | None, fid_g: float, gap: float, control: float, steps: int = 1) -> dict:
    return {"step": step, "steps": [step] * steps, "fid_k": fid_k, "fid_g": fid_g, "div_k_gap": gap,
            "control": control}


def test_the_rule_ranks_each_criterion_in_its_direction_and_breaks_ties_to_the_later_step() -> None:
    rows = [_row(500, 40.0, 20.0, 0.5, 0.30),       # ranks 3, 2, 3, 3 -> 2.75
            _row(1000, 30.0, 25.0, 0.4, 0.50),      # ranks 2, 3, 2, 1 -> 2.0
            _row(1500, 20.0, 10.0, 0.1, 0.40)]      # ranks 1, 1, 1, 2 -> 1.25
    assert mean_ranks(rows) == [2.75, 2.0, 1.25]
    assert choose(rows) == 2
    tied = [_row(500, 10.0, 10.0, 0.2, 0.5), _row(1000, 10.0, 10.0, 0.2, 0.5)]
    assert mean_ranks(tied) == [1.5, 1.5] and choose(tied) == 1
    same_step = [_row(1000, 10.0, 10.0, 0.2, 0.5, steps=2), _row(1000, 10.0, 10.0, 0.2, 0.5)]
    assert choose(same_step) == 1                   # then the candidate averaging fewer snapshots


def test_missing_or_non_finite_scores_rank_last_and_share_their_rank() -> None:
    rows = [_row(500, 30.0, 10.0, 0.2, 0.5), _row(1000, None, 10.0, 0.2, 0.5),
            _row(1500, float("nan"), 10.0, 0.2, 0.5)]
    # FID_k ranks 1, 2.5, 2.5; the other three criteria tie at 2 for every row
    assert mean_ranks(rows) == [(1 + 2 + 2 + 2) / 4, (2.5 + 6) / 4, (2.5 + 6) / 4]
    assert choose(rows) == 0


def test_candidates_are_the_snapshots_the_x0_best_unless_kept_and_the_means_of_the_last_k() -> None:
    names = lambda c: [x["checkpoint"] for x in c]
    assert names(candidate_list([500, 1000, 1500], 1000, ())) == ["500", "1000", "1500"]
    assert names(candidate_list([500, 1000], 1250, [2])) == ["500", "1000", "model.pt", "mean of last 2"]
    assert names(candidate_list([500], None, ())) == ["500", "model.pt"]       # a run that logged no best step
    avg = candidate_list([500, 1000, 1500], 1500, [2])[-1]
    assert avg["steps"] == [1000, 1500] and avg["step"] == 1500


def test_select_and_export_on_a_real_catalog(tmp_path, demo_workspace, capsys) -> None:
    import torch

    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.run_dir import average_snapshots
    from tiny_denoiser import train_tiny_on_catalog

    run = train_tiny_on_catalog(demo_workspace.home, tmp_path / "run", snapshot_every=2)
    out, export = tmp_path / "sel.json", tmp_path / "chosen"
    rc = main(["--home", str(demo_workspace.home), "--run", str(run), "--windows", "3", "--control-music", "1",
               "--steps", "2", "--threads", "1", "--average-last", "2", "--export", str(export), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    rows = result["checkpoints"]
    assert [r["checkpoint"] for r in rows] == ["2", "4", "mean of last 2"]   # model.pt is step 4's, listed once
    assert [r["x0_best"] for r in rows] == [False, True, False]
    assert rows[2]["steps"] == [2, 4] and rows[2]["val_simple"] is None
    for r in rows:
        assert np.isfinite(r["fid_k"]) and 0.0 <= r["control"] <= 1.0 and r["seconds"] >= 0
    assert result["settings"]["split"] == "val" and result["settings"]["windows"] <= 3
    chosen = rows[result["chosen_index"]]
    assert result["chosen"] == chosen and out.with_suffix(".md").is_file()
    assert "**(chosen)**" in out.with_suffix(".md").read_text() and result["exported_to"] == str(export)
    raw = json.loads((export / "config.json").read_text())
    assert raw["data"]["best_step"] == chosen["step"]
    assert raw["data"]["checkpoint_selection"]["steps"] == chosen["steps"]
    assert "val samples" in raw["data"]["checkpoint_selection"]["by"]
    exported = DancePipeline.from_pretrained(export).model.state_dict()
    expected = average_snapshots(run, chosen["steps"])
    assert all(torch.equal(exported[k], expected[k]) for k in expected)
    # an existing export folder is refused before any scoring
    rc = main(["--home", str(demo_workspace.home), "--run", str(run), "--export", str(export), "--out", str(out)])
    assert rc == 2 and "the export folder exists" in capsys.readouterr().err


def test_a_run_without_snapshots_is_refused_with_exit_2(tmp_path, demo_workspace, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    rc = main(["--home", str(demo_workspace.home), "--run", str(run), "--out", str(tmp_path / "x.json")])
    assert rc == 2 and "kept no snapshots" in capsys.readouterr().err
    assert main(["--home", "h", "--run", "r", "--out", "o.json", "--average-last", "two"]) == 2
    assert "--average-last takes comma-separated integers" in capsys.readouterr().err
    assert main(["--home", "h", "--run", "r", "--out", "o.json", "--control-music", "0"]) == 2
    assert "the control test needs music" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
