"""bench/probe_kinetic_energy.py: how much a generator's windows move against the real ones, on the val split."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench.probe_kinetic_energy import LAGS, PROBE_STEPS, main, ratio_summary


def test_ratio_summary_reads_slower_windows_and_the_spread_of_their_energy() -> None:
    real = np.array([[1.0, 2.0], [2.0, 4.0], [4.0, 8.0]])
    half = ratio_summary(real / 2, real)
    assert half["median_ratio"] == pytest.approx(0.5) and half["share_windows_slower"] == 1.0
    assert half["std_log_window_speed_generated"] == pytest.approx(half["std_log_window_speed_real"], abs=1e-6)
    flat = ratio_summary(np.full_like(real, 3.0), real)          # every window at one energy: no spread left
    assert flat["std_log_window_speed_generated"] == pytest.approx(0.0, abs=1e-6)
    assert flat["share_windows_slower"] == pytest.approx(1 / 3)


def test_the_probe_on_a_real_catalog(tmp_path, demo_workspace, capsys) -> None:
    from tiny_denoiser import train_tiny_on_catalog

    run = train_tiny_on_catalog(demo_workspace.home, tmp_path / "run", steps=2, eval_every=2)
    out = tmp_path / "probe.json"
    rc = main(["--home", str(demo_workspace.home), "--run", str(run), "--windows", "3", "--steps", "2",
               "--threads", "1", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["windows"] == 3 and result["split"] == "val"
    assert [r["t"] for r in result["x0"]] == list(PROBE_STEPS)
    for lag in LAGS:
        assert result["sampled"][f"lag_{lag}"]["median_ratio"] > 0
        assert all(r[f"lag_{lag}"]["median_ratio"] > 0 for r in result["x0"])
    assert all(r["kinetic"] >= 0 and r["simple"] > 0 for r in result["x0"])
    assert out.with_suffix(".md").read_text().startswith("# Kinetic energy of")
    assert main(["--home", str(tmp_path / "nowhere"), "--run", str(run), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err
