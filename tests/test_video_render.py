"""Dance -> MP4 (generation/video: mp4, compose, `dancesearch render`).

Real encodes with the ffmpeg of imageio-ffmpeg, real headless rendering; each test skips with the reason
when imageio-ffmpeg or an EGL context is missing. Videos are 64x64 and at most 2 s, so the file runs in
a few seconds.
"""
from __future__ import annotations

import json
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.record import MotionRecord

FPS = 30.0
SIZE = 64


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    from generation.video.mp4 import encoder_available

    ok, why = encoder_available()
    if not ok:
        pytest.skip(f"video encoding unavailable: {why}")
    return why


def write_sine_wav(path: Path, seconds: float, sr: int = 22050, hz: float = 440.0) -> Path:
    t = np.arange(int(round(seconds * sr))) / sr
    pcm = np.rint(0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of a 440 Hz sine: longer than the videos, so the encoder must cut it."""
    return write_sine_wav(tmp_path_factory.mktemp("music") / "sine.wav", 3.0)


@pytest.fixture(scope="module")
def dance_frames(gl: str, dance: MotionRecord) -> np.ndarray:
    from generation.video import render_guidance
    from generation.video.compose import compose

    return compose(render_guidance(dance, SIZE), "body")


def moving_frames(n: int, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """Smooth colour gradients that move a little each frame (easy on H.264, so errors stay small)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        out[i, ..., 0] = 20 + x * 150 / w + 2 * i
        out[i, ..., 1] = 20 + y * 200 / h
        out[i, ..., 2] = 128 + 60 * np.sin((x + y + 2 * i) / 20)
    return out


def decode(path: Path) -> np.ndarray:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, dtype=np.uint8).reshape(h, w, 3) for f in gen])


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# --- write_mp4 / probe_mp4 -------------------------------------------------------------------------------
def test_dance_with_music_encodes_to_h264_aac_and_decodes_back(ffmpeg, dance_frames, music, tmp_path):
    from generation.video.mp4 import probe_mp4, write_mp4

    out = tmp_path / "dance.mp4"
    info = write_mp4(iter(dance_frames), FPS, out, music, num_frames=len(dance_frames))
    assert info.frames == 60 and info.has_audio and (info.width, info.height) == (SIZE, SIZE)
    probe = probe_mp4(out)
    assert probe.video_codec == "h264"
    assert probe.frames == 60 and probe.fps == pytest.approx(FPS)
    assert (probe.width, probe.height) == (SIZE, SIZE)
    assert probe.has_audio and probe.audio_codec == "aac" and probe.audio_sample_rate == 22050
    assert abs(probe.duration_s - 2.0) <= 1.0 / FPS          # the 3-s music is cut to the video
    assert probe.bytes == out.stat().st_size > 0
    back = decode(out)
    assert back.shape == dance_frames.shape
    assert float(np.abs(back.astype(np.int16) - dance_frames.astype(np.int16)).mean()) < 4.0
    assert leftovers(tmp_path, {"dance.mp4"}) == []


def test_unknown_length_and_short_music_still_give_exact_duration(ffmpeg, tmp_path):
    """A generator (no len): the music is muxed in a second pass; a short music is padded with silence."""
    from generation.video.mp4 import probe_mp4, write_mp4

    short = write_sine_wav(tmp_path / "short.wav", 0.5)
    frames = moving_frames(45)
    out = tmp_path / "v.mp4"
    info = write_mp4((f for f in frames), FPS, out, short)
    probe = probe_mp4(out)
    assert info.frames == probe.frames == 45
    assert probe.has_audio and abs(probe.duration_s - 1.5) <= 1.0 / FPS
    back = decode(out)
    assert float(np.abs(back.astype(np.int16) - frames.astype(np.int16)).mean()) < 3.0
    assert leftovers(tmp_path, {"short.wav", "v.mp4"}) == []


def test_silent_video_odd_size_is_padded_to_even(ffmpeg, tmp_path):
    from generation.video.mp4 import probe_mp4, write_mp4

    out = tmp_path / "odd.mp4"
    write_mp4(moving_frames(10, 33, 47), 25.0, out)
    probe = probe_mp4(out)
    assert (probe.width, probe.height) == (48, 34) and probe.frames == 10 and probe.fps == pytest.approx(25.0)
    assert not probe.has_audio and probe.audio_codec is None


def test_unreadable_audio_raises_naming_it_and_leaves_nothing(ffmpeg, tmp_path):
    from generation.video.mp4 import write_mp4

    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"this is not audio at all")
    with pytest.raises(InputError, match="noise.wav"):
        write_mp4(moving_frames(5), FPS, tmp_path / "x.mp4", bad)
    with pytest.raises(InputError, match="gone.wav"):
        write_mp4(moving_frames(5), FPS, tmp_path / "x.mp4", tmp_path / "gone.wav")
    assert leftovers(tmp_path, {"noise.wav"}) == []


def test_failure_mid_stream_keeps_the_old_file_and_no_temp(ffmpeg, music, tmp_path):
    from generation.video.mp4 import write_mp4

    out = tmp_path / "keep.mp4"
    write_mp4(moving_frames(4), FPS, out)
    before = out.read_bytes()

    def broken():
        yield from moving_frames(6)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_mp4(broken(), FPS, out, music, num_frames=20)
    bad_frame = list(moving_frames(3)) + [np.zeros((SIZE, SIZE + 2, 3), np.uint8)]
    with pytest.raises(InputError, match="frame 3"):
        write_mp4(bad_frame, FPS, out)
    with pytest.raises(InputError, match="as many"):
        write_mp4(iter(moving_frames(3)), FPS, out, num_frames=5)
    with pytest.raises(InputError, match="more frames"):
        write_mp4(iter(moving_frames(90)), FPS, out, music, num_frames=2)
    with pytest.raises(InputError, match="no frames"):
        write_mp4([], FPS, out)
    assert out.read_bytes() == before
    assert leftovers(tmp_path, {"keep.mp4"}) == []


def test_ffmpeg_failure_quotes_its_stderr(ffmpeg, tmp_path):
    from generation.video.mp4 import EncodeError, write_mp4

    with pytest.raises(EncodeError, match="ffmpeg failed") as exc:
        write_mp4(moving_frames(3), FPS, tmp_path / "x.mp4", preset="no-such-preset")
    assert "invalid preset" in str(exc.value).lower()       # the cause, said first by ffmpeg, is quoted
    assert "\n" not in str(exc.value)
    assert leftovers(tmp_path, set()) == []


def test_missing_imageio_ffmpeg_names_the_install(monkeypatch, tmp_path):
    from generation.video.mp4 import EncoderUnavailable, write_mp4

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(EncoderUnavailable, match=r'pip install -e "\.\[video\]"'):
        write_mp4(moving_frames(2), FPS, tmp_path / "x.mp4")
    assert leftovers(tmp_path, set()) == []


# --- compose ----------------------------------------------------------------------------------------------
def test_views_shapes_and_body_colours(gl, dance):
    from generation.video import render_guidance
    from generation.video.compose import BACKGROUND_GREY, VIEWS, compose, view_shape
    from generation.video.parts import PART_PALETTE

    g = render_guidance(dance.slice(0, 3), (48, 40))
    for view in VIEWS:
        img = compose(g, view)
        assert img.dtype == np.uint8 and img.shape == (3, *view_shape(view, 48, 40), 3), view
    body = compose(g, "body")
    off = g.mask[..., 0] == 0
    assert (body[off] == BACKGROUND_GREY).all()
    on = ~off
    lab = g.labels[..., 0][on]
    # shaded: never brighter than the part colour, never below the ambient share of it
    colour = PART_PALETTE[lab].astype(np.int16)
    assert (body[on].astype(np.int16) <= colour + 1).all()
    assert (body[on].astype(np.int16) >= (colour * 0.35).astype(np.int16) - 1).all()
    np.testing.assert_array_equal(compose(g, "pose"), g.pose)
    sbs = compose(g, "side_by_side")
    np.testing.assert_array_equal(sbs[:, :, :40], body)
    np.testing.assert_array_equal(sbs[:, :, 40:], g.pose)
    grid = compose(g, "grid")
    np.testing.assert_array_equal(grid[:, :48, 40:], g.normal_image())
    np.testing.assert_array_equal(grid[:, 48:, :40], g.semantic_image())
    with pytest.raises(InputError, match="unknown view"):
        compose(g, "xray")


# --- the CLI ----------------------------------------------------------------------------------------------
def run_cli(argv: list[str], capsys) -> tuple[int, dict | None, str]:
    from ui.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:          # argparse's own usage errors
        rc = int(exc.code)
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if out.strip() else None), err


@pytest.fixture(scope="module")
def tiny_npz(dance: MotionRecord, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("motion") / "tiny.npz"
    dance.slice(0, 45).save(path)
    return path


def test_cli_motion_npz_with_music(ffmpeg, gl, tiny_npz, music, tmp_path, capsys):
    from generation.video.mp4 import probe_mp4

    out = tmp_path / "clip.mp4"
    rc, payload, _ = run_cli(["render", "--motion", str(tiny_npz), "--music", str(music), "--size", str(SIZE),
                              "--view", "side-by-side", "--out", str(out), "--json"], capsys)
    assert rc == 0
    assert payload["out"] == str(out) and payload["frames"] == 45 and payload["fps"] == pytest.approx(FPS)
    assert payload["seconds"] == pytest.approx(1.5, abs=1 / FPS)
    assert payload["size"] == SIZE and (payload["width"], payload["height"]) == (2 * SIZE, SIZE)
    assert payload["view"] == "side-by-side" and payload["audio"] == str(music)
    assert payload["render_seconds"] > 0 and payload["encode_seconds"] >= 0
    probe = probe_mp4(out)
    assert probe.frames == 45 and probe.audio_codec == "aac" and probe.video_codec == "h264"


def test_cli_bvh_seconds_and_silence(ffmpeg, gl, dance, tmp_path, capsys):
    from encoders.motion.bvh_write import write_bvh

    bvh = tmp_path / "d.bvh"
    write_bvh(dance.slice(0, 30), bvh)
    out = tmp_path / "b.mp4"
    rc, payload, err = run_cli(["render", "--motion", str(bvh), "--seconds", "0.5", "--size", "32", "--view",
                                "pose", "--out", str(out), "--json"], capsys)
    assert rc == 0, err
    assert payload["frames"] == 15 and payload["audio"] is None
    assert "silent" in err


def test_cli_catalog_clip_uses_its_motion_and_audio(ffmpeg, gl, tmp_path, capsys):
    from search_support import make_workspace

    from generation.video.mp4 import probe_mp4

    ws = make_workspace(tmp_path / "home", clips_per_genre=1)
    cat = ws.catalog(create=False)
    try:
        clips = cat.clips()
    finally:
        cat.close()
    clip = next(c for c in clips if c.audio_path)
    out = tmp_path / "c.mp4"
    rc, payload, err = run_cli(["render", "--clip", str(clip.id), "--home", str(ws.home), "--size", "32",
                                "--out", str(out), "--json"], capsys)
    assert rc == 0, err
    assert payload["clip"] == clip.id and payload["frames"] == 45
    assert payload["audio"] == str(ws.resolve(clip.audio_path))
    assert probe_mp4(out).has_audio
    rc, payload, err = run_cli(["render", "--clip", str(clip.id), "--home", str(ws.home), "--size", "32",
                                "--no-music", "--out", str(out), "--json"], capsys)
    assert rc == 0 and payload["audio"] is None and not probe_mp4(out).has_audio
    rc, _, err = run_cli(["render", "--clip", "9999", "--home", str(ws.home), "--out", str(out)], capsys)
    assert rc == 2 and "no clip with id 9999" in err


@pytest.mark.parametrize("argv, message", [
    (["--motion", "a.npz", "--clip", "1"], "not allowed with"),
    ([], "--clip ID or --motion FILE"),
    (["--motion", "a.npz", "--size", "8"], "--size must be within"),
    (["--motion", "a.npz", "--size", "5000"], "--size must be within"),
    (["--motion", "a.npz", "--out", "dance.avi"], "must name an .mp4"),
    (["--motion", "a.txt"], "must name a motion record"),
    (["--motion", "a.npz", "--music", "m.wav", "--no-music"], "not allowed with"),
])
def test_cli_usage_errors_exit_2(argv, message, tmp_path, capsys):
    rc, payload, err = run_cli(["render", *argv], capsys)
    assert rc == 2 and message in err and payload is None


def test_cli_failures_exit_1_with_one_error_line(ffmpeg, gl, tiny_npz, tmp_path, capsys):
    noise = tmp_path / "noise.wav"
    noise.write_bytes(b"RIFF nonsense")
    cases = [
        (["--motion", str(tmp_path / "missing.npz")], "motion file not found"),
        (["--motion", str(tiny_npz), "--music", str(noise)], "noise.wav"),
        (["--motion", str(tiny_npz), "--music", str(tmp_path / "gone.ogg")], "gone.ogg"),
        (["--clip", "1", "--home", str(tmp_path / "empty")], "no catalog"),
    ]
    for argv, message in cases:
        rc, payload, err = run_cli(["render", *argv, "--out", str(tmp_path / "x.mp4")], capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 1 and payload is None, argv
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert leftovers(tmp_path, {"noise.wav"}) == []


def test_cli_without_the_video_extra_says_what_to_install(monkeypatch, tiny_npz, tmp_path, capsys):
    from ui.cli import build_parser

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    monkeypatch.setitem(sys.modules, "moderngl", None)
    build_parser()                                   # every other command still registers
    rc, _, err = run_cli(["render", "--motion", str(tiny_npz), "--out", str(tmp_path / "x.mp4")], capsys)
    assert rc == 1 and 'pip install -e ".[video]"' in err
    assert leftovers(tmp_path, set()) == []
