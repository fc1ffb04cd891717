"""The diffusion back-end (generation/video/diffusion_backend) on tiny random-weight configs.

Real diffusers / torch modules throughout (tiny widths, 32-64 px, 1-2 DDIM steps): module shapes, the
weights folder (save/load round trip, incomplete folders named), that the reference photo and the guidance
really reach the output, and the window blending of long videos (exact on one DDIM step).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from encoders.errors import InputError  # noqa: E402
from generation.video.diffusion_backend import (GuidanceEncoder, GuidanceFusion, GuidedDenoiser,  # noqa: E402
                                                PoseGuidedVideoPipeline, backend_available, build_tiny_pipeline,
                                                check_weights_dir, context_windows, self_attention_layers,
                                                tiny_config, window_weights, write_reference_bank)

STEPS = 2


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("diffusion") / "weights", seed=0)


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    p = PoseGuidedVideoPipeline.from_pretrained(tiny_dir)
    p.set_progress_bar_config(disable=True)
    return p


def guidance(frames: int = 8, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(frames, c, size, size, generator=g)
            for k, c in (("depth", 1), ("normal", 3), ("semantic_map", 3), ("dwpose", 3), ("mask", 1))}


def photo(seed: int = 0, shape=(40, 36, 3)) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


def run(pipe, ref=None, guid=None, seed: int = 1, **kw) -> np.ndarray:
    kw.setdefault("num_inference_steps", STEPS)
    return pipe(photo() if ref is None else ref, guidance() if guid is None else guid,
                generator=torch.Generator().manual_seed(seed), **kw)


# -- modules ---------------------------------------------------------------------------------------------------
def test_guidance_encoder_shapes_and_fusion():
    torch.manual_seed(0)
    enc = GuidanceEncoder(guidance_embedding_channels=32, guidance_input_channels=3, block_out_channels=(4, 8, 16, 32))
    x = torch.rand(2, 3, 64, 48)
    assert enc(x).shape == (2, 32, 8, 6)                       # latent resolution: /8
    assert torch.count_nonzero(enc(x)) == 0                    # Champ's zero-initialised conv_out: a no-op at first
    grey = torch.rand(2, 1, 64, 48)
    with torch.no_grad():
        enc.conv_out.weight.normal_()
    assert torch.allclose(enc(grey), enc(grey.expand(-1, 3, -1, -1)))   # 1-channel maps read as grey RGB
    other = GuidanceEncoder(32, 1, (4, 8, 16, 32))
    with torch.no_grad():
        other.conv_out.weight.normal_()
    fusion = GuidanceFusion({"normal": enc, "depth": other})
    g = {"normal": x, "depth": grey, "mask": grey}
    assert torch.allclose(fusion(g), enc(x) + other(grey), atol=1e-6)
    assert torch.allclose(fusion(g, {"depth": 0.0}), enc(x), atol=1e-6)
    assert torch.allclose(fusion(g, {"depth": 0.5, "normal": 2.0}), 2 * enc(x) + 0.5 * other(grey), atol=1e-5)
    with pytest.raises(InputError, match="guidance type missing"):
        fusion({"normal": x})


def test_reference_bank_and_denoiser_shapes(pipe):
    layers = self_attention_layers(pipe.denoiser.unet)
    assert layers and not any("motion_modules" in n for n in layers)
    lat = torch.randn(1, 4, 8, 8)
    ctx = torch.zeros(1, 1, 32)
    write_reference_bank(pipe.reference_unet, pipe.bank, lat, ctx)
    assert set(pipe.bank.tokens) == set(layers)                 # one bank entry per spatial self-attention
    for name, tokens in pipe.bank.tokens.items():
        assert tokens.shape[0] == 1 and tokens.shape[2] == layers[name].to_k.in_features
    x = torch.randn(1, 4, 6, 8, 8)                              # (B, C, F, h, w)
    feats = torch.randn(6, 32, 8, 8)
    with torch.no_grad():
        pipe.bank.mode = "read"
        with_ref = pipe.denoiser(x, 500, ctx, feats)
        pipe.bank.mode = "off"
        plain = pipe.denoiser(x, 500, ctx, feats)
        unguided = pipe.denoiser(x, 500, ctx, None)
        pipe.bank.mode, pipe.bank.uncond = "read", 6             # CFG batch: the unconditional half ignores the bank
        both = pipe.denoiser(torch.cat([x, x]), 500, torch.cat([ctx, ctx]), torch.cat([feats, feats]))
    pipe.bank.clear()
    assert torch.allclose(both[:1], plain, atol=1e-5) and torch.allclose(both[1:], with_ref, atol=1e-5)
    assert with_ref.shape == x.shape
    assert not torch.allclose(with_ref, plain)                  # reading the bank changes the prediction
    assert not torch.allclose(plain, unguided)                  # so do the guidance features
    with pytest.raises(ValueError, match="guidance features"):
        pipe.denoiser(x, 500, ctx, torch.randn(5, 32, 8, 8))
    assert isinstance(pipe.denoiser, GuidedDenoiser)


def test_windows_and_linear_blend_weights():
    assert context_windows(8, 8, 4) == [(0, 8)]
    assert context_windows(12, 8, 4) == [(0, 8), (4, 12)]
    assert context_windows(20, 8, 2) == [(0, 8), (6, 14), (12, 20)]
    assert context_windows(13, 8, 4) == [(0, 8), (2, 10), (5, 13)]   # spread evenly, overlaps >= 4
    for frames, seg, ov in ((12, 8, 4), (20, 8, 2), (13, 8, 4), (40, 16, 4), (9, 8, 0)):
        wins = context_windows(frames, seg, ov)
        ws = window_weights(wins, frames)
        total = torch.zeros(frames)
        for (s, e), w in zip(wins, ws):
            assert w.shape == (e - s,) and (w > 0).all()
            total[s:e] += w
        assert torch.allclose(total, torch.ones(frames))
    a, b = window_weights([(0, 8), (4, 12)], 12)
    assert torch.allclose(b[:4], torch.tensor([1, 2, 3, 4]) / 5)
    assert torch.allclose(a[4:], torch.tensor([4, 3, 2, 1]) / 5)


# -- the pipeline ----------------------------------------------------------------------------------------------
def test_end_to_end_and_save_load_round_trip(pipe, tiny_dir, tmp_path):
    frames = run(pipe)                                          # 2 DDIM steps, from build_tiny_pipeline's folder
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    out = pipe.save_pretrained(tmp_path / "copy")
    layout = check_weights_dir(out)
    assert layout.guidance_types == tiny_config().guidance_types and not layout.image_encoder
    again = PoseGuidedVideoPipeline.from_pretrained(out)
    again.set_progress_bar_config(disable=True)
    assert np.array_equal(run(again), frames)
    with pytest.raises(InputError, match="output folder exists"):
        pipe.save_pretrained(out)


def test_reference_image_and_guidance_change_the_video(pipe):
    def one(ref=None, guid=None, **kw) -> np.ndarray:
        return run(pipe, ref, guidance(4) if guid is None else guid, num_inference_steps=1, **kw).astype(int)

    base = one()
    assert np.abs(base - one(ref=photo(seed=7))).mean() > 0.5
    no_cfg = one(guidance_scale=1.0)                            # the bank acts without CFG too
    assert np.abs(no_cfg - one(ref=photo(seed=7), guidance_scale=1.0)).mean() > 0.5
    left, right = guidance(4), guidance(4)                      # a skeleton-like bright patch moves across
    left["dwpose"].zero_()[:, :, 8:24, 2:10] = 1.0
    right["dwpose"].zero_()[:, :, 8:24, 22:30] = 1.0
    assert np.abs(one(guid=left) - one(guid=right)).mean() > 0.5
    g = guidance(4)
    g["mask"] = torch.zeros_like(g["mask"])                     # not a type of this model: ignored
    assert np.array_equal(one(guid=g), base)


def test_long_video_windows_are_blended_linearly(pipe):
    """One DDIM step is affine in the model output, so the merged latents must equal the per-window runs on
    the frames only one window sees, and their linear blend on the overlap, exactly."""
    frames, seg, ov = 12, 8, 4
    g = guidance(frames)
    noise = torch.randn(1, 4, frames, 4, 4, generator=torch.Generator().manual_seed(3))
    kw = {"num_inference_steps": 1, "output_type": "latent"}
    merged = run(pipe, guid=g, latents=noise, segment_frames=seg, overlap=ov, **kw)
    a = run(pipe, guid={k: v[:8] for k, v in g.items()}, latents=noise[:, :, :8], segment_frames=seg, **kw)
    b = run(pipe, guid={k: v[4:] for k, v in g.items()}, latents=noise[:, :, 4:], segment_frames=seg, **kw)
    assert merged.shape == (1, 4, frames, 4, 4)
    assert torch.allclose(merged[:, :, :4], a[:, :, :4], atol=1e-5)
    assert torch.allclose(merged[:, :, 8:], b[:, :, 4:], atol=1e-5)
    wb = (torch.arange(1, 5) / 5).view(1, 1, 4, 1, 1)
    blend = (1 - wb) * a[:, :, 4:] + wb * b[:, :, :4]
    assert torch.allclose(merged[:, :, 4:8], blend, atol=1e-5)
    assert not torch.allclose(a[:, :, 4:], b[:, :, :4], atol=1e-3)   # the windows disagree: blending did work


def test_long_video_gives_every_frame(pipe):
    out = run(pipe, guid=guidance(20), segment_frames=8, overlap=3)
    assert out.shape == (20, 32, 32, 3) and out.dtype == np.uint8
    # fps picks 5-s segments, capped at the motion module's 32 frames; longer explicit segments are refused
    assert pipe._segment(None, 4, 4.0) == (20, 4) and pipe._segment(None, 4, 30.0) == (32, 4)
    with pytest.raises(InputError, match="segment too long"):
        run(pipe, segment_frames=33)


@pytest.mark.parametrize("change, match", [
    (lambda g: g.pop("normal"), "guidance type missing"),
    (lambda g: g.update(depth=g["depth"][:5]), "disagree"),
    (lambda g: g.update(dwpose=g["dwpose"][:, :2]), "bad guidance tensor"),
    (lambda g: [g.update({k: v[..., :30, :30]}) for k, v in list(g.items())], "multiples of 8"),
])
def test_bad_guidance_is_an_input_error(pipe, change, match):
    g = guidance()
    change(g)
    with pytest.raises(InputError, match=match):
        run(pipe, guid=g)


def test_bad_reference_and_options_are_input_errors(pipe):
    with pytest.raises(InputError, match="reference_image"):
        run(pipe, ref=np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="overlap"):
        run(pipe, segment_frames=8, overlap=8)
    with pytest.raises(InputError, match="latents"):
        run(pipe, latents=torch.zeros(1, 4, 3, 4, 4))


# -- the weights folder ----------------------------------------------------------------------------------------
def _drop(path):
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


@pytest.mark.parametrize("mutilate, words", [
    (lambda d: _drop(d / "vae"), ["part 'vae' missing", "vae"]),
    (lambda d: _drop(d / "motion_module" / "diffusion_pytorch_model.safetensors"),
     ["motion_module", "weights file missing", "diffusion_pytorch_model.safetensors", "config.json"]),
    (lambda d: _drop(d / "scheduler" / "scheduler_config.json"), ["scheduler", "scheduler_config.json"]),
    (lambda d: _drop(d / "reference_unet" / "config.json"), ["reference_unet", "incomplete", "config.json"]),
    (lambda d: _drop(d / "guidance_encoder_dwpose"), ["guidance_encoder_dwpose", "missing"]),
    (lambda d: (d / "denoising_unet" / "config.json").write_text("{not json"), ["denoising_unet", "JSON"]),
    (lambda d: (d / "guidance_encoder_depth" / "config.json").write_text(json.dumps(
        {**json.loads((d / "guidance_encoder_depth" / "config.json").read_text()),
         "guidance_embedding_channels": 16})), ["guidance_encoder_depth", "do not fit", "expected 32, got 16"]),
    (lambda d: (d / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"truncated"),
     ["vae", "cannot load part 'vae'"]),
])
def test_incomplete_weights_folder_names_the_part(tiny_dir, tmp_path, mutilate, words):
    d = tmp_path / "w"
    shutil.copytree(tiny_dir, d)
    check_weights_dir(d)
    mutilate(d)
    with pytest.raises(InputError) as err:
        PoseGuidedVideoPipeline.from_pretrained(d)
    for w in words:
        assert w in str(err.value)


def test_missing_diffusers_names_the_extra(monkeypatch):
    import sys

    import generation.video.diffusion_backend as backend

    monkeypatch.setitem(sys.modules, "diffusers", None)      # import diffusers -> ImportError
    monkeypatch.delitem(sys.modules, "generation.video.diffusion_backend.pipeline")
    with pytest.raises(backend.BackendUnavailable, match=r'needs diffusers: pip install -e "\.\[video\]"'):
        backend.__getattr__("PoseGuidedVideoPipeline")
    assert backend.backend_available()[0] is False


def test_weights_folder_is_local_only(tmp_path):
    with pytest.raises(InputError, match="weights folder not found"):
        check_weights_dir("fudan-generative-ai/champ")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="part 'vae' missing"):
        check_weights_dir(tmp_path / "empty")
    assert backend_available()[0]


@pytest.mark.slow
def test_tiny_folder_with_clip_image_encoder(tmp_path):
    pytest.importorskip("transformers")
    d = build_tiny_pipeline(tmp_path / "clip", seed=1, image_encoder=True)
    assert check_weights_dir(d).image_encoder
    p = PoseGuidedVideoPipeline.from_pretrained(d)
    p.set_progress_bar_config(disable=True)
    ref = torch.rand(1, 3, 32, 32)
    assert torch.count_nonzero(p.image_context(ref)) > 0 and p.image_context(ref).shape == (1, 1, 32)
    out = run(p, num_inference_steps=1)
    assert out.shape == (8, 32, 32, 3)
    again = PoseGuidedVideoPipeline.from_pretrained(p.save_pretrained(tmp_path / "copy"))
    again.set_progress_bar_config(disable=True)
    assert np.array_equal(run(again, num_inference_steps=1), out)


def test_rendered_dance_guidance_end_to_end(gl, dance, tiny_dir):
    """A real dance's guidance maps (EGL renderer) drive a 2-step run from a build_tiny_pipeline folder."""
    from generation.video import render_guidance

    maps = render_guidance(dance.slice(0, 6), 64).as_tensors()
    p = PoseGuidedVideoPipeline.from_pretrained(tiny_dir)
    p.set_progress_bar_config(disable=True)
    out = p(photo(shape=(96, 64, 3)), maps, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0),
            segment_frames=4, overlap=2)
    assert out.shape == (6, 64, 64, 3) and out.dtype == np.uint8
