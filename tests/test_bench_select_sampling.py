"""bench/select_sampling.py: sampling settings of one run scored on the val split, chosen by the fixed rule."""
from __future__ import annotations

import json

import pytest

from bench.select_sampling import choose_setting, main, parse_settings
from encoders.errors import InputError


def _row(fid_k: float, fid_g: float, gap: float, control: float) -> dict:
    return {"fid_k": fid_k, "fid_g": fid_g, "div_k_gap": gap, "control": control}


def test_only_settings_with_enough_control_compete_and_ties_go_to_the_first_listed() -> None:
    rows = [_row(40.0, 15.0, 0.6, 0.72),            # the default
            _row(30.0, 14.0, 0.5, 0.65),            # better everywhere but control: not eligible
            _row(35.0, 16.0, 0.4, 0.71)]            # ranks 1, 2, 1 against the default's 2, 1, 2
    assert choose_setting(rows, 0.7) == 2
    assert choose_setting([_row(30.0, 15.0, 0.5, 0.8), _row(30.0, 15.0, 0.5, 0.9)], 0.7) == 0
    assert choose_setting([_row(30.0, 15.0, 0.5, 0.5), _row(40.0, 15.0, 0.5, 0.6)], 0.7) == 1   # none eligible


def test_settings_are_parsed_typed_and_checked() -> None:
    assert parse_settings(["default=", "g3=guidance=3", "sto=stochastic=true,genre_guidance=1.5"]) == [
        ("default", {}), ("g3", {"guidance": 3.0}), ("sto", {"stochastic": True, "genre_guidance": 1.5})]
    for bad, needle in [(["a=", "a="], "unique"), (["a=speed=2"], "unknown sampling setting"),
                        (["a=guidance"], "key=value"), (["a=foot_lock=true"], "post-process"),
                        (["a=guidance=-1"], "out of range")]:
        with pytest.raises(InputError, match=needle):
            parse_settings(bad)


def test_two_settings_on_a_real_catalog(tmp_path, demo_workspace, capsys) -> None:
    from tiny_denoiser import train_tiny_on_catalog

    train_tiny_on_catalog(demo_workspace.home, tmp_path / "run", steps=2, eval_every=2)
    out = tmp_path / "sampling.json"
    rc = main(["default=", "g3=guidance=3,genre_guidance=1.5", "--home", str(demo_workspace.home), "--run",
               str(tmp_path / "run"), "--windows", "3", "--control-music", "1", "--steps", "2", "--threads", "1",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["rows"]] == ["default", "g3"]
    assert result["rows"][1]["sampling"] == {"steps": 2, "guidance": 3.0, "genre_guidance": 1.5, "stochastic": False}
    assert result["rows"][0]["fid_k"] != result["rows"][1]["fid_k"]        # the setting reached the sampler
    assert result["chosen"] == result["rows"][result["chosen_index"]]["name"]
    assert main(["a=speed=1", "--home", "h", "--run", "r", "--out", str(out)]) == 2
    assert "unknown sampling setting" in capsys.readouterr().err
