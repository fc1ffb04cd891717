"""M2PEnc (generation/video/m2penc): heads, save/load, training, music-guidance alignment, run-dir errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from encoders.errors import InputError
from encoders.motion.record import MotionRecord
from generation.video.m2penc import (ClipPairs, DataConfig, M2PEnc, M2PEncConfig, M2PEncPipeline, TrainConfig,
                                     save_pretrained, train_m2penc)
from generation.video.m2penc.data import music_at_15fps, render_pairs, window_arrays
from generation.video.m2penc.evaluate import clip_metrics
from generation.video.m2penc.pipeline import heatmap_argmax
from generation.video.m2penc.train import evaluate_loss, loss_terms, validation_picks

TINY = M2PEncConfig(music_dim=35, size=16, channels=4, layers=1, attn_grid=4, attn_dim=8, heads=2)


def test_both_heads_have_the_paper_shapes():
    model = M2PEnc(TINY)
    guid, heat = model(torch.randn(2, 6, 35))
    assert guid.shape == (2, 6, 11, 16, 16)
    assert heat.shape == (2, 6, 18, 16, 16)
    with pytest.raises(InputError, match="music"):
        model(torch.randn(2, 6, 34))


def test_inflated_conv_of_a_still_video_is_the_2d_conv():
    from generation.video.m2penc.model import InflatedConv3d

    conv2d = torch.nn.Conv2d(3, 5, 3, padding=1)
    conv3d = InflatedConv3d.inflate(conv2d, kernel_t=3)
    frame = torch.randn(1, 3, 8, 8)
    video = frame[:, :, None].repeat(1, 1, 5, 1, 1)
    out = conv3d(video)
    # away from the zero-padded first and last frames every frame equals the 2D convolution
    assert torch.allclose(out[:, :, 2], conv2d(frame), atol=1e-5)


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = M2PEnc(TINY)
    model.set_normalisation(torch.linspace(-1, 1, 35), torch.linspace(0.5, 2, 35))
    with torch.no_grad():                                   # attention output starts at zero: make it count
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_pretrained(tmp_path / "run", model, DataConfig(size=16), {"window": 6})
    pipe = M2PEncPipeline.from_pretrained(tmp_path / "run")
    x = np.random.default_rng(0).normal(size=(6, 35)).astype(np.float32)
    with torch.no_grad():
        g, h = model.eval()(torch.from_numpy(x)[None])
    pred = pipe.predict_features(x)
    np.testing.assert_array_equal(pred.guidance, g[0].clamp(0, 1).numpy())
    np.testing.assert_array_equal(pred.heatmaps, h[0].numpy())
    assert pipe.window == 6 and pipe.model_id.startswith("m2penc-")


def test_pipeline_predicts_every_frame_of_longer_music(tmp_path):
    save_pretrained(tmp_path / "run", M2PEnc(TINY), DataConfig(size=16), {"window": 6})
    pipe = M2PEncPipeline.from_pretrained(tmp_path / "run")
    pred = pipe(np.random.default_rng(1).normal(size=(31, 35)).astype(np.float32))    # 15 frames at 15 fps
    assert pred.guidance.shape == (15, 11, 16, 16) and pred.heatmaps.shape == (15, 18, 16, 16)
    assert pred.guidance.min() >= 0 and pred.guidance.max() <= 1
    feats = torch.from_numpy(pipe.features(np.random.default_rng(1).normal(size=(31, 35)).astype(np.float32)))
    with torch.no_grad():
        _, first = pipe.model(feats[None, 0:6])
        _, last = pipe.model(feats[None, 9:15])
    np.testing.assert_allclose(pred.heatmaps[0:6], first[0].numpy(), atol=1e-6)
    # windows 0-5, 6-11, then the tail 12-14 from the last full window (frames 9-14), not a 3-frame window
    np.testing.assert_allclose(pred.heatmaps[12:15], last[0, 3:].numpy(), atol=1e-6)


def _learnable_clips(n: int, frames: int, split: str, seed: int) -> list[ClipPairs]:
    """Guidance that depends on the music: a square whose side follows music column 0, keypoints on its corner."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        music = rng.normal(size=(frames, 35)).astype(np.float32)
        side = np.clip(np.rint(8 + 4 * music[:, 0]), 2, 15).astype(int)
        guid = np.zeros((frames, 11, 16, 16), dtype=np.uint8)
        kp = np.zeros((frames, 18, 2), dtype=np.float32)
        for t, s in enumerate(side):
            guid[t, :, :s, :s] = 255
            kp[t, :] = (s - 0.5, s - 0.5)
        out.append(ClipPairs(f"{split}{i}", guid, kp, np.ones((frames, 18), bool), music, meta={"split": split}))
    return out


def test_a_few_training_steps_reduce_the_loss(tmp_path):
    torch.manual_seed(0)
    clips = _learnable_clips(6, 12, "train", 0) + _learnable_clips(2, 12, "val", 1)
    cfg = TrainConfig(window=6, batch_size=4, lr=5e-3, minutes=5, max_steps=20, eval_every=20, num_threads=1,
                      checkpoint_seconds=1e9, warmup_steps=0, lr_min_ratio=1.0)
    data = DataConfig(size=16)
    before = evaluate_loss(M2PEnc(TINY), clips[6:], validation_picks(clips[6:], 6, 8), cfg, data.heat_sigma)
    torch.manual_seed(0)
    summary = train_m2penc(clips, tmp_path / "run", TINY, data, cfg, progress=False)
    assert summary["steps"] == 20
    pipe = M2PEncPipeline.from_pretrained(tmp_path / "run")
    # before: the same initial weights (seeded) with the normalisation the trainer fits
    after = evaluate_loss(pipe.model, clips[6:], validation_picks(clips[6:], 6, 8), cfg, data.heat_sigma)
    assert after["guid"] < 0.85 * before["guid"], (before, after)
    assert after["loss"] < 0.6 * before["loss"], (before, after)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["step"] == 20 and (tmp_path / "run" / "state.pt").is_file()


def test_training_resumes_from_its_state(tmp_path):
    clips = _learnable_clips(3, 8, "train", 2)
    cfg = TrainConfig(window=4, batch_size=2, minutes=5, max_steps=3, eval_every=10, checkpoint_seconds=1e9)
    train_m2penc(clips, tmp_path / "run", TINY, DataConfig(size=16), cfg, progress=False)
    cfg5 = TrainConfig(window=4, batch_size=2, minutes=5, max_steps=5, eval_every=10, checkpoint_seconds=1e9)
    summary = train_m2penc(clips, tmp_path / "run", TINY, DataConfig(size=16), cfg5, progress=False)
    assert summary["steps"] == 5                       # 3 + 2 more, not 5 from scratch
    with pytest.raises(InputError, match="resume"):
        train_m2penc(clips, tmp_path / "run", TINY, DataConfig(size=16),
                     TrainConfig(window=4, batch_size=2, lr=0.01, max_steps=6), progress=False)


def _body_target(frames: int = 4, size: int = 16, moving: bool = False) -> torch.Tensor:
    """(1, T, 11, S, S) guidance: a 4x4 body (all channels, mask included) on a blank background."""
    g = torch.zeros(1, frames, 11, size, size)
    for t in range(frames):
        x = 2 + (2 * t if moving else 0)
        g[0, t, :, 6:10, x:x + 4] = 1.0
    return g


def test_body_weighted_l1_punishes_a_blank_image_more_than_plain_l1():
    target = _body_target()
    heat = torch.zeros(1, 4, 18, 16, 16)
    blank = torch.zeros_like(target)
    plain = loss_terms(blank, heat, target, heat, TrainConfig(body_weight=0.0, temporal_weight=0, energy_weight=0))
    weighted = loss_terms(blank, heat, target, heat, TrainConfig(body_weight=5.0, body_dilate=2))
    assert plain["guid"].item() == pytest.approx(16 / 256)            # plain L1: the body's share of the pixels
    # weights 6 on the dilated 8x8 block (64 px, 16 of them body), 1 elsewhere: 16*6 / (64*6 + 192)
    assert weighted["guid"].item() == pytest.approx(16 * 6 / (64 * 6 + 192))
    assert weighted["guid"] > 2.5 * plain["guid"]
    # a background error costs less than a body error of the same size under the weights, not under plain L1
    bg_err = target.clone()
    bg_err[0, :, :, 0:4, 12:16] = 1.0
    assert loss_terms(bg_err, heat, target, heat, TrainConfig(body_weight=5.0))["guid"] < weighted["guid"]


def test_temporal_terms_are_zero_for_the_truth_and_punish_a_still_image():
    heat = torch.zeros(1, 4, 18, 16, 16)
    cfg = TrainConfig()                                                # defaults: both terms on
    assert cfg.temporal_weight > 0 and cfg.energy_weight > 0
    static = _body_target()
    out = loss_terms(static.clone(), heat, static, heat, cfg)
    assert out["temporal"].item() == 0.0 and out["energy"].item() == 0.0 and out["loss"].item() == 0.0
    moving = _body_target(moving=True)
    still = moving[:, :1].repeat(1, 4, 1, 1, 1)                        # the first frame, held
    out = loss_terms(still, heat, moving, heat, cfg)
    assert out["temporal"].item() > 0 and out["energy"].item() == pytest.approx(1.0)
    off = loss_terms(still, heat, moving, heat, TrainConfig(temporal_weight=0, energy_weight=0))
    assert off["temporal"].item() == 0.0 and off["loss"] < out["loss"]


def test_lr_warms_up_then_decays_by_cosine():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, lr_min_ratio=0.1)
    assert cfg.lr_at(0, 0.0) == pytest.approx(1e-4) and cfg.lr_at(9, 0.0) == pytest.approx(1e-3)
    assert cfg.lr_at(10, 0.5) == pytest.approx(0.55e-3) and cfg.lr_at(50, 1.0) == pytest.approx(1e-4)
    with pytest.raises(InputError, match="body_weight"):
        TrainConfig(body_weight=-1).validate()


def test_motion_metrics_tell_a_still_image_from_the_dance():
    clip = _learnable_clips(1, 12, "test", 5)[0]
    clip.music[:, 34] = 0.0
    clip.music[::4, 34] = 1.0
    from generation.video.m2penc.data import heatmaps_from_keypoints

    heat = heatmaps_from_keypoints(clip.keypoints, clip.valid, 16, 1.5)
    truth = clip_metrics(clip.guidance.astype(np.float32) / 255.0, heat, clip, 1.5)
    assert truth["motion_ratio"] == pytest.approx(1.0) and truth["motion_corr"] == pytest.approx(1.0)
    still = np.repeat(clip.guidance[:1].astype(np.float32) / 255.0, 12, axis=0)
    m = clip_metrics(still, heat, clip, 1.5)
    assert m["motion_ratio"] == 0.0 and m["motion_corr"] == 0.0 and m["beat_corr"] == 0.0


def test_music_at_15fps_keeps_every_beat():
    music = np.zeros((10, 35), dtype=np.float32)
    music[3, 34] = 1.0                                  # an odd row: would vanish with plain subsampling
    music[:, 1] = np.arange(10)
    out = music_at_15fps(music)
    assert out.shape == (5, 35)
    assert out[:, 34].tolist() == [0, 1, 0, 0, 0]
    assert out[:, 1].tolist() == [0.5, 2.5, 4.5, 6.5, 8.5]


def test_windows_align_music_frames_with_guidance_frames(gl, dance):
    """A dance that holds one pose until the beat and another from it: the guidance changes where the beat is."""
    beat = 24                                           # 30-fps frame; 15-fps frame 12
    idx = np.where(np.arange(60) < beat, 0, 40)
    rec = MotionRecord(30.0, dance.trans[idx], dance.positions[idx], dance.joint_names, dance.rotations_6d[idx])
    music = np.zeros((60, 35), dtype=np.float32)
    music[beat, 34] = 1.0
    pairs = render_pairs(rec, music, DataConfig(size=32))
    assert len(pairs) == 30 and pairs.guidance.shape == (30, 11, 32, 32)
    changed = [j for j in range(1, 30) if not np.array_equal(pairs.guidance[j], pairs.guidance[j - 1])]
    assert changed == [beat // 2]
    assert np.flatnonzero(pairs.music[:, 34]).tolist() == [beat // 2]
    win = window_arrays(pairs, start=8, window=8, sigma=1.0)
    moved = [j for j in range(1, 8) if not np.array_equal(win["guidance"][j], win["guidance"][j - 1])]
    assert moved == np.flatnonzero(win["music"][:, 34]).tolist() == [beat // 2 - 8]
    assert win["heatmaps"].shape == (8, 18, 32, 32)


def test_metrics_of_the_truth_are_zero():
    clip = _learnable_clips(1, 5, "test", 3)[0]
    from generation.video.m2penc.data import heatmaps_from_keypoints

    heat = heatmaps_from_keypoints(clip.keypoints, clip.valid, 16, 1.5)
    m = clip_metrics(clip.guidance.astype(np.float32) / 255.0, heat, clip, 1.5)
    assert m["guidance_l1"] == 0.0 and m["heatmap_mse"] == 0.0 and m["keypoint_px"] < 0.5
    assert np.allclose(heatmap_argmax(heat)[0, 0], np.floor(clip.keypoints[0, 0]) + 0.5)
    worse = clip_metrics(np.zeros_like(heat[:, :11]), np.zeros_like(heat), clip, 1.5)
    assert worse["guidance_l1"] > 0.1 and worse["heatmap_mse"] > 0


def test_median_baseline_is_the_per_pixel_median():
    from generation.video.m2penc.evaluate import mean_baseline, median_guidance

    clips = _learnable_clips(3, 5, "train", 4)
    stack = np.concatenate([c.guidance for c in clips]).astype(np.float64)
    np.testing.assert_allclose(median_guidance(clips), np.median(stack, axis=0) / 255.0, atol=1 / 255.0 + 1e-6)
    mean_g, mean_h = mean_baseline(clips, 1.5)
    np.testing.assert_allclose(mean_g, stack.mean(axis=0) / 255.0, atol=1e-5)
    assert mean_h.shape == (18, 16, 16)


def test_bad_run_dir_raises_input_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_run"
    with pytest.raises(InputError, match="no_such_run"):
        M2PEncPipeline.from_pretrained(missing)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(InputError, match="empty_run.*not an M2PEnc run"):
        M2PEncPipeline.from_pretrained(empty)
    other = tmp_path / "other_run"
    save_pretrained(other, M2PEnc(TINY), DataConfig(size=16))
    raw = json.loads((other / "config.json").read_text())
    raw["kind"] = "gcdance"
    (other / "config.json").write_text(json.dumps(raw))
    with pytest.raises(InputError, match="other_run"):
        M2PEncPipeline.from_pretrained(other)
    raw["kind"], raw["model"]["channels"] = "m2penc", 0
    (other / "config.json").write_text(json.dumps(raw))
    with pytest.raises(InputError, match="other_run.*config.json.*channels"):
        M2PEncPipeline.from_pretrained(other)
    corrupt = tmp_path / "corrupt_run"
    save_pretrained(corrupt, M2PEnc(TINY), DataConfig(size=16))
    (corrupt / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="model.pt"):
        M2PEncPipeline.from_pretrained(corrupt)


@pytest.mark.slow
def test_corpus_to_eval_and_videos_end_to_end(gl, tmp_path):
    """Corpus -> rendered pairs -> a few training steps -> eval against both baselines -> both videos."""
    pytest.importorskip("imageio_ffmpeg")
    from generation.procedural.corpus import write_demo_corpus
    from generation.video.m2penc.evaluate import comparison_video, evaluate
    from generation.video.m2penc.train import train_from_corpus
    from generation.video.mp4 import probe_mp4

    corpus = tmp_path / "corpus"
    write_demo_corpus(corpus, clips=20, seed=0, workers=1, progress=False, datasheet=False)   # 18 train + 2 test
    small = M2PEncConfig(music_dim=35, channels=4, layers=1)
    summary = train_from_corpus(corpus, tmp_path / "run", tmp_path / "pairs", None, small, DataConfig(),
                                TrainConfig(max_steps=2, batch_size=2, minutes=5), progress=False)
    assert summary["steps"] == 2 and summary["clips_train"] == 18
    report = evaluate(tmp_path / "run", corpus, tmp_path / "pairs", n_boot=50, generator_steps=2,
                      out=tmp_path / "eval.json", progress=False)
    assert report["clips"] == 2 and json.loads((tmp_path / "eval.json").read_text())["kind"] == "m2penc-eval"
    for system in ("m2penc", "mean", "median", "generator", "m2penc_other_music"):
        assert 0 < report["metrics"][system]["guidance_l1"]["mean"] < 1
    assert set(report["differences"]["m2penc_minus_generator"]["keypoint_px"]) == {"diff", "lo", "hi"}
    info = comparison_video(tmp_path / "run", corpus, tmp_path / "pairs", None, tmp_path / "cmp.mp4",
                            generator_steps=2)
    probe = probe_mp4(tmp_path / "cmp.mp4")
    assert probe.has_audio and probe.frames == info["frames"] and probe.width == 3 * 3 * 64 * 4 + 16


def _beats_music(frames: int, beats: list[int]) -> np.ndarray:
    music = np.random.default_rng(5).normal(size=(frames, 35)).astype(np.float32)
    music[:, 33:35] = 0.0
    music[beats, 34] = 1.0
    return music


def test_beat_phase_is_zero_on_beats_and_rises_linearly_between_them():
    from generation.video.m2penc.data import beat_phase, beat_phase_features

    music = _beats_music(25, [3, 4, 9, 19])         # frames 3-4: one beat widened by pooling, counted once
    beat, bar = beat_phase(music)
    t = np.arange(25)
    expected = np.empty(25)
    expected[:3] = (t[:3] - 3) / 6 % 1.0            # before the first beat: the first period extrapolated
    expected[3:9] = (t[3:9] - 3) / 6                # interpolated beat to beat: periods 6, then 10
    expected[9:19] = (t[9:19] - 9) / 10
    expected[19:] = (t[19:] - 19) / 10              # after the last beat: the last period extrapolated
    np.testing.assert_allclose(beat, expected, atol=1e-6)
    assert beat[[3, 9, 19]].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(bar[[3, 9, 19]], [0.0, 0.25, 0.5], atol=1e-6)          # beat k of the bar = k / 4
    np.testing.assert_allclose(bar[9:19], 0.25 + (t[9:19] - 9) / 40, atol=1e-6)
    feats = beat_phase_features(music)
    assert feats.shape == (25, 4)
    np.testing.assert_allclose(feats[:, 0] ** 2 + feats[:, 1] ** 2, 1.0, atol=1e-6)
    np.testing.assert_allclose(np.arctan2(feats[:, 0], feats[:, 1]) % (2 * np.pi), 2 * np.pi * beat, atol=1e-5)
    no_beat, _ = beat_phase(_beats_music(10, []))   # no beat at all: 0.5-s period from frame 0, still defined
    np.testing.assert_allclose(no_beat, (np.arange(10) / 7.5) % 1.0, atol=1e-6)


def test_beat_phase_option_widens_the_input_only_when_on_and_survives_the_run_dir(tmp_path):
    from generation.video.m2penc.data import model_input, music_at_fps

    music = _beats_music(12, [2, 8])
    guid = np.zeros((12, 11, 16, 16), np.uint8)
    kp, valid = np.zeros((12, 18, 2), np.float32), np.ones((12, 18), bool)
    off = ClipPairs("a", guid, kp, valid, music, meta={"split": "train"})
    assert off.music_input().shape == (12, 35) and DataConfig().beat_phase is False     # runs 1-2 unchanged
    on = ClipPairs("a", guid, kp, valid, music, meta={"split": "train"}, beat_phase=True)
    assert on.music_input().shape == (12, 39)
    np.testing.assert_array_equal(on.music_input()[:, :35], music)
    assert np.allclose(on.music_input()[[2, 8], 35:37], [0.0, 1.0], atol=1e-6)          # sin 0, cos 1 on beats

    save_pretrained(tmp_path / "old", M2PEnc(TINY), DataConfig(size=16), {"window": 6})
    assert "beat_phase" not in json.loads((tmp_path / "old" / "config.json").read_text())["data"]

    cfg = TrainConfig(window=6, batch_size=2, minutes=5, max_steps=1, eval_every=10, checkpoint_seconds=1e9)
    clips = [ClipPairs(f"c{i}", guid, kp, valid, music, meta={"split": "train"}) for i in range(2)]
    train_m2penc(clips, tmp_path / "run", M2PEncConfig(**{**TINY.to_dict(), "music_dim": 39}),
                 DataConfig(size=16, beat_phase=True), cfg, progress=False)
    pipe = M2PEncPipeline.from_pretrained(tmp_path / "run")
    assert pipe.data.beat_phase and pipe.model.config.music_dim == 39
    music30 = np.repeat(music, 2, axis=0)                                                # the same beats at 30 fps
    feats = pipe.features(music30)
    np.testing.assert_array_equal(feats, model_input(music_at_fps(music30, 2), None, True))
    assert pipe(music30).guidance.shape == (12, 11, 16, 16)
