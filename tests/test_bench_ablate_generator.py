"""bench/ablate_generator.py: variants trained by real `generate train` subprocesses, then compared pair by pair."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from bench.ablate_generator import (PROTOCOL, WINDOW_METRICS, _aggregate, deep_merge, load_variants, main,
                                     plan_training, window_values)
from encoders.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
# the hashed bag-of-words text backbone (no MiniLM to load) keeps each `generate train` subprocess to its imports
TINY = {"denoiser": {"d_model": 32, "heads": 2, "body_layers": 1, "hand_layers": 1, "dropout": 0.0,
                     "time_stride": 4, "genre_dim": 128},
        "train": {"steps": 2, "batch_size": 4, "eval_every": 250, "val_windows": 4, "warmup_steps": 1, "minutes": 5,
                  "music_swap": 0.0, "text_backbone": "bow"}}


def test_deep_merge_replaces_leaves_and_merges_objects() -> None:
    base = {"denoiser": {"d_model": 32, "heads": 2}, "train": {"loss_weights": {"simple": 1.0, "foot": 1.0}}}
    merged = deep_merge(base, {"denoiser": {"heads": 4}, "train": {"loss_weights": {"foot": 0.5}, "seed": 3}})
    assert merged == {"denoiser": {"d_model": 32, "heads": 4},
                      "train": {"loss_weights": {"simple": 1.0, "foot": 0.5}, "seed": 3}}
    assert base["denoiser"]["heads"] == 2                                  # the base is not modified


def test_shipped_variants_are_the_issues_rows(tmp_path) -> None:
    from generation.diffusion.denoiser import DenoiserConfig

    variants = load_variants(ROOT / "bench" / "generator_ablation_variants.json")
    assert list(variants) == ["base", "swap", "fm", "nash", "aligned", "learned_variance", "ds_attention",
                              "alignment_module", "genre_critic"]
    assert variants["base"]["train"] == {"loss_combination": "fixed", "music_swap": 0.0, "music_tower_run": None,
                                         "genre_loss_weight": 0.0}
    for name, row in variants.items():          # each row is one change: the others keep base's settings
        changed = {k for k, v in row["train"].items() if variants["base"]["train"].get(k) != v}
        changed |= set(row.get("denoiser", {}))
        assert len(changed - {"mtl_update_every"}) == (0 if name == "base" else 1), (name, changed)
    assert variants["nash"]["train"]["loss_combination"] == "nash"
    assert variants["aligned"]["train"]["mtl_update_every"] == 4
    popdg = {"learned_variance", "ds_attention", "alignment_module"}
    if not popdg <= {f.name for f in fields(DenoiserConfig)}:
        pytest.skip("this DenoiserConfig has no POPDG flags yet: the merged recipes cannot be checked")
    jobs = plan_training(ROOT / "generation" / "diffusion" / "recipes" / "cpu.json",
                         ROOT / "bench" / "generator_ablation_variants.json", tmp_path, threads=1, minutes=7)
    by_name = {j.name: j.recipe for j in jobs}
    assert by_name["ds_attention"]["denoiser"]["ds_attention"] is True
    assert by_name["base"]["train"]["minutes"] == 7 and by_name["base"]["train"]["num_threads"] == 1
    assert by_name["base"]["denoiser"]["d_model"] == 192                    # the rest comes from the base recipe


@pytest.mark.slow
def test_train_two_variants_in_parallel_then_compare_them_pairwise(tmp_path, demo_workspace, capsys) -> None:
    home = str(demo_workspace.home)
    base = tmp_path / "tiny.json"
    base.write_text(json.dumps(TINY))
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"_about": "a comment", "plain": {},
                                    "swapped": {"train": {"music_swap": 0.5, "seed": 1}}}))
    out_dir = tmp_path / "runs"
    train = ["train", "--home", home, "--base", str(base), "--variants", str(variants), "--out-dir", str(out_dir),
             "--parallel", "2", "--threads", "1", "--set", "train.eval_every=2"]
    assert main(train) == 0, capsys.readouterr().err
    for name in ("plain", "swapped"):
        assert (out_dir / name / "model.pt").is_file() and (out_dir / f"{name}.log").is_file()
        done = json.loads((out_dir / f"{name}.done.json").read_text())
        assert done["result"]["steps"] == 2 and done["recipe"]["train"]["num_threads"] == 1
        assert done["recipe"]["train"]["eval_every"] == 2                  # --set reached every variant
        config = json.loads((out_dir / name / "config.json").read_text())
        assert config["train"]["num_threads"] == 1 and config["denoiser"]["d_model"] == 32
    assert json.loads((out_dir / "swapped" / "config.json").read_text())["train"]["music_swap"] == 0.5
    capsys.readouterr()

    assert main(train) == 0                                                 # resumable: nothing retrained
    assert "skipped (already trained)" in capsys.readouterr().err
    assert main(train + ["--steps", "3"]) == 1                              # another recipe than was trained
    assert "another recipe" in capsys.readouterr().err

    out = tmp_path / "cmp.json"
    md = tmp_path / "cmp.md"
    rc = main(["compare", "--home", home, "--runs", f"plain={out_dir / 'plain'}", f"swapped={out_dir / 'swapped'}",
               f"again={out_dir / 'plain'}", f"noisy={out_dir / 'plain'}@stochastic=true,guidance=3",
               f"locked={out_dir / 'plain'}@foot_lock=true", "--baseline", "plain", "--windows", "4", "--control-music", "1",
               "--steps", "2", "--draws", "50", "--threads", "1", "--out", str(out), "--markdown", str(md)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["order"] == ["plain", "swapped", "again", "noisy", "locked"] and result["baseline"] == "plain"
    assert result["settings"]["windows"] == 4 and len(result["settings"]["window_indices"]) == 4
    assert 0.0 <= result["classifier"]["test_accuracy"] <= 1.0
    runs = result["runs"]
    for name in ("plain", "again"):              # the baseline against itself, and regenerated under another name
        paired = runs[name]["paired_vs_baseline"]
        assert {"fid_k", "fid_g", "div_k", "bas", "pfc", "foot_skating", "jerk", "control",
                "control_no_posture"} <= set(paired)
        for metric, p in paired.items():
            if p["diff"] is not None:
                assert p["diff"] == 0.0, (name, metric, p)
                assert p["ci95"] == [0.0, 0.0], (name, metric, p)
    # the same model sampled otherwise is compared on the same windows like another model
    assert runs["noisy"]["sampling"] == {"steps": 2, "guidance": 3.0, "genre_guidance": None, "stochastic": True,
                                         "foot_lock": False}
    assert runs["locked"]["sampling"]["foot_lock"] is True and runs["plain"]["sampling"]["foot_lock"] is False
    assert runs["plain"]["sampling"]["stochastic"] is False
    assert any(p["diff"] not in (None, 0.0) for p in runs["noisy"]["paired_vs_baseline"].values())
    swapped, plain = runs["swapped"], runs["plain"]
    paired = swapped["paired_vs_baseline"]
    assert any(p["diff"] not in (None, 0.0) for p in paired.values())       # another model, other dances
    for metric in ("fid_k", "fid_g", "bas", "pfc", "foot_skating", "jerk", "control", "control_no_posture"):
        # the per-window values reproduce the suite's set values: their difference is the suite's difference
        if swapped["metrics"][metric] is not None and plain["metrics"][metric] is not None:
            assert paired[metric]["diff"] == pytest.approx(swapped["metrics"][metric] - plain["metrics"][metric],
                                                           rel=1e-6, abs=1e-9), metric
            lo, hi = paired[metric]["ci95"]
            assert lo <= hi
    assert swapped["parameters"] > 0 and swapped["checkpoint_bytes"] > 0
    assert swapped["training"]["windows_seen"] == 8 and swapped["training"]["steps_done"] == 2
    assert len(swapped["per_window"]["pfc"]["v"]) == 4 and len(swapped["per_window"]["control"]["v"]) == len(
        swapped["per_genre_control"])                                       # 1 music window x every genre
    text = md.read_text()
    assert "| plain (baseline) |" in text and "| swapped |" in text and "genre_text" in text
    assert "control w/o posture" in text
    assert f"posture groups (test accuracy {result['classifier']['test_accuracy_without_posture']:.3f})" in text
    assert len(swapped["per_window"]["control_no_posture"]["v"]) == len(swapped["per_window"]["control"]["v"])
    assert "| noisy @ guidance 3.0, stochastic True |" in text and "| locked @ foot_lock True |" in text


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not a readable JSON"),
    ('["plain"]', "JSON object"),
    ('{"../up": {}}', "folder name"),
    ('{"typo": {"denoiser": {"d_modle": 16}}}', "d_modle"),
    ('{"odd": {"denoiser": {"d_model": 31}}}', "variant 'odd'"),
    ('{"_only_a_comment": 1}', "no variants"),
])
def test_a_bad_variants_file_is_a_clear_error(tmp_path, capsys, content, needle) -> None:
    base = tmp_path / "tiny.json"
    base.write_text(json.dumps(TINY))
    variants = tmp_path / "variants.json"
    variants.write_text(content)
    rc = main(["train", "--home", str(tmp_path), "--base", str(base), "--variants", str(variants), "--out-dir",
               str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "runs" / "typo").exists()                        # nothing trained


def test_bad_command_lines_exit_2_and_bad_runs_exit_1(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--home", str(tmp_path), "--base", "x.json"])       # no --variants / --out-dir
    assert exc.value.code == 2
    assert main(["compare", "--home", str(tmp_path), "--runs", "no-equals-sign"]) == 1
    assert "NAME=DIR" in capsys.readouterr().err
    for bad, needle in (("x=RUN@guidnace=3", "guidnace"), ("x=RUN@steps=0", "steps out of range"),
                        ("x=RUN@stochastic=maybe", "bad value for stochastic"),
                        ("x=RUN@guidance=nan", "bad value for guidance"), ("x=RUN@steps=2,steps=3", "twice"),
                        ("x=RUN@guidance", "not a generator run directory")):     # no "=": part of the path
        assert main(["compare", "--home", str(tmp_path), "--runs", bad]) == 1
        assert needle in capsys.readouterr().err, bad
    assert main(["compare", "--home", str(tmp_path), "--runs", f"x={tmp_path}"]) == 1
    assert "not a generator run directory" in capsys.readouterr().err
    variants = ROOT / "bench" / "generator_ablation_variants.json"
    cpu = ROOT / "generation" / "diffusion" / "recipes" / "cpu.json"
    assert main(["train", "--home", str(tmp_path), "--base", str(cpu), "--variants", str(variants),
                 "--out-dir", str(tmp_path / "runs"), "--set", "warmup_steps=3"]) == 1
    assert "SECTION.KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(InputError, match="--only"):
        plan_training(cpu, variants, tmp_path, threads=1, only=["nope"])


def test_per_window_values_aggregate_to_the_suites_physical_metrics(demo_workspace) -> None:
    """compare takes PFC, PBC, skating, penetration and jerk from per-window values (for the paired bootstrap);
    over a set they must give what the metric suite reports for it."""
    from generation.metrics.catalog_source import window_samples, window_store
    from generation.metrics.protocols import get_protocol
    from generation.metrics.suite import physical_set_metrics

    proto = get_protocol(PROTOCOL)
    samples = window_samples(window_store(demo_workspace.home), "test")[:12]
    notes: list[str] = []
    values = window_values(samples, [None] * len(samples), proto, notes)
    suite = physical_set_metrics(samples, proto, [], "gt")
    assert set(WINDOW_METRICS[1:]) == set(suite) and not notes
    for metric in WINDOW_METRICS[1:]:
        assert float(_aggregate(values[metric])) == pytest.approx(suite[metric], rel=1e-9, abs=1e-12), metric
