"""The GCDance denoiser, its DDIM sampler, inpainting and long-term sampling, on tiny configurations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders.errors import DanceSearchError
from generation.diffusion.denoiser import DenoiserConfig, GCDanceDenoiser
from generation.diffusion.losses import diffusion_losses, joint_positions
from generation.diffusion.sampling import assemble_windows, ddim_sample
from generation.diffusion.schedule import DDIMScheduler
from generation.representation import FEATURE_DIM, LAYOUT, Normalizer
from generation.representation.codec import decode
from tiny_denoiser import tiny_denoiser_config

TINY = tiny_denoiser_config()


def _model(seed: int = 0) -> GCDanceDenoiser:
    torch.manual_seed(seed)
    return GCDanceDenoiser(TINY)


def _inputs(b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 16, FEATURE_DIM, generator=g), torch.randint(0, 1000, (b,), generator=g),
            torch.randn(b, 16, 35, generator=g), torch.randn(b, 8, generator=g))


def test_shapes_and_the_body_expert_never_sees_the_hands() -> None:
    model = _model().eval()
    x, t, music, genre = _inputs()
    out = model(x, t, music, genre)
    assert out.shape == (2, 16, FEATURE_DIM)
    x2 = x.clone()
    x2[..., LAYOUT.hand_rotations] += 1.0                     # change only the hands
    out2 = model(x2, t, music, genre)
    body = slice(0, LAYOUT.body_rotations.stop)
    torch.testing.assert_close(out2[..., body], out[..., body])
    assert not torch.allclose(out2[..., LAYOUT.hand_rotations], out[..., LAYOUT.hand_rotations])
    # the hand expert does see the body (its features are in the hand branch's cross-attention)
    x3 = x.clone()
    x3[..., LAYOUT.body_rotations] += 1.0
    assert not torch.allclose(model(x3, t, music, genre)[..., LAYOUT.hand_rotations], out[..., LAYOUT.hand_rotations])
    with pytest.raises(DanceSearchError, match="denoiser input"):
        model(x[:, :8], t, music, genre)
    with pytest.raises(DanceSearchError, match="multiple of time_stride"):
        DenoiserConfig(window_frames=15)


def test_ddim_with_a_perfect_x0_prediction_returns_x0() -> None:
    sched = DDIMScheduler()
    x0 = torch.randn(3, 16, 5)
    x = torch.randn(3, 16, 5)
    ts = sched.set_timesteps(10).tolist()
    for i, t in enumerate(ts):
        x = sched.step(x0, t, ts[i + 1] if i + 1 < len(ts) else None, x)
    torch.testing.assert_close(x, x0)
    noisy = sched.add_noise(x0, torch.zeros_like(x0), torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(noisy, x0 * sched.alphas_cumprod[0].sqrt())
    assert float(sched.alphas_cumprod[-1]) < 1e-4 and float(sched.alphas_cumprod[0]) > 0.999


def test_x0_training_reduces_the_loss_on_a_tiny_set() -> None:
    torch.manual_seed(0)
    model = _model()
    sched = DDIMScheduler()
    x0, _, music, genre = _inputs(4, seed=1)
    x0 = x0 * 0.3
    norm = Normalizer(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM), 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = last = None
    for step in range(60):
        t = torch.randint(0, 1000, (4,))
        xt = sched.add_noise(x0, torch.randn_like(x0), t)
        losses = diffusion_losses(model(xt, t, music, genre), x0, norm)
        loss = losses["simple"] + 0.1 * losses["velocity"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = losses["simple"].item() if first is None else first
        last = losses["simple"].item()
    assert last < 0.7 * first, (first, last)
    assert set(losses) == {"simple", "joints", "velocity", "foot"} and all(torch.isfinite(v) for v in losses.values())


def test_joint_positions_match_the_representation_decoder() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(0, 0.3, (10, FEATURE_DIM)).astype(np.float32)
    want = decode(feats).positions
    got = joint_positions(torch.as_tensor(feats)[None])[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_sampling_is_deterministic_and_the_genre_changes_the_dance() -> None:
    model, sched = _model(), DDIMScheduler()
    _, _, music, genre = _inputs()
    a = ddim_sample(model, sched, music, genre, steps=5, guidance=2.0, generator=torch.Generator().manual_seed(3))
    b = ddim_sample(model, sched, music, genre, steps=5, guidance=2.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    # a trained model learns to use the genre; here the FiLM gates start at zero, so open them first
    for name, p in model.named_parameters():
        if "to_gamma" in name or "to_beta" in name:
            torch.nn.init.normal_(p, std=0.5)
    c = ddim_sample(model, sched, music, genre, steps=5, generator=torch.Generator().manual_seed(3))
    d = ddim_sample(model, sched, music, -genre, steps=5, generator=torch.Generator().manual_seed(3))
    assert (c - d).abs().mean() > 1e-3


def test_given_starting_noise_is_the_same_as_drawing_it_and_a_wrong_shape_is_refused() -> None:
    """``x_T`` lets GCRM's candidates start every window from its own seed in one batch."""
    model, sched = _model(), DDIMScheduler()
    _, _, music, genre = _inputs()
    drawn = ddim_sample(model, sched, music, genre, steps=4, guidance=2.0, generator=torch.Generator().manual_seed(5))
    noise = torch.randn((2, 16, FEATURE_DIM), generator=torch.Generator().manual_seed(5))
    given = ddim_sample(model, sched, music, genre, steps=4, guidance=2.0, x_T=noise)
    torch.testing.assert_close(drawn, given, rtol=0, atol=0)
    with pytest.raises(DanceSearchError, match=r"x_T has shape \(1, 16, 319\), expected \(2, 16, 319\)"):
        ddim_sample(model, sched, music, genre, steps=4, x_T=noise[:1])


def test_inpainting_keeps_the_constrained_frames_and_joints() -> None:
    model, sched = _model(), DDIMScheduler()
    _, _, music, genre = _inputs()
    known = torch.randn(2, 16, FEATURE_DIM)
    mask = torch.zeros(2, 16, FEATURE_DIM, dtype=torch.bool)
    mask[:, :4] = True                                        # keep the first frames (continue a dance)
    mask[:, :, LAYOUT.body_rotations] = True                  # keep the body everywhere (generate the hands)
    out = ddim_sample(model, sched, music, genre, steps=4, known=known, mask=mask,
                      generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[mask], known[mask])
    assert not torch.allclose(out[~mask], known[~mask])


def test_long_term_windows_agree_on_their_overlaps_and_assemble_without_a_jump() -> None:
    model, sched = _model(), DDIMScheduler()
    _, _, music, genre = _inputs(3)
    steps_seen: list[int] = []

    def hard_chain(i: int, x0: torch.Tensor) -> torch.Tensor:    # EDGE's constraint on the clean prediction
        steps_seen.append(i)
        x0 = x0.clone()
        x0[1:, :8] = x0[:-1, 8:]
        return x0

    wins = ddim_sample(model, sched, music, genre, steps=4, on_x0=hard_chain,
                       generator=torch.Generator().manual_seed(0))
    assert steps_seen == [0, 1, 2, 3]
    torch.testing.assert_close(wins[1:, :8], wins[:-1, 8:])       # the last step returns the hooked prediction
    free = ddim_sample(model, sched, music, genre, steps=4, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(free[1:, :8], free[:-1, 8:])
    dance = assemble_windows(wins)
    assert dance.shape == (4 * 8, FEATURE_DIM)
    torch.testing.assert_close(dance[:8], wins[0, :8])
    torch.testing.assert_close(dance[8:16], wins[0, 8:])          # identical overlaps: the fade changes nothing
    ramp = assemble_windows(torch.stack([torch.zeros(16, 1), torch.ones(16, 1)]))
    assert ramp[0, 0] == 0 and ramp[-1, 0] == 1
    assert (ramp[1:, 0] - ramp[:-1, 0]).max() <= 1 / 8 + 1e-6         # a linear fade, no jump


def _tiny_run(tmp_path):
    from generation.diffusion.run_dir import save_run

    model = _model()
    for name, p in model.named_parameters():               # an "trained" model: conditioning gates open
        if "to_gamma" in name or "to_beta" in name:
            torch.nn.init.normal_(p, std=0.2)
    norm = Normalizer(np.zeros(FEATURE_DIM), np.full(FEATURE_DIM, 0.2), 1)
    genres = ["popping", "waltz"]
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    return save_run(tmp_path / "run", model, model.state_dict(), norm, genres, emb, {"steps": 0}, "test", [], {})


def test_pipeline_long_dance_is_continuous_deterministic_and_checked(tmp_path) -> None:
    from encoders.errors import InputError
    from generation.diffusion.pipeline import DancePipeline

    pipe = DancePipeline.from_pretrained(_tiny_run(tmp_path))
    music = np.random.default_rng(1).normal(size=(44, 35)).astype(np.float32)   # 16-frame windows, hop 8: 5 windows
    a = pipe(music, "Popping", seed=3, steps=4)
    b = pipe(music, "popping", seed=3, steps=4)
    assert a.windows == 5 and a.record.num_frames == 44 and a.genre == "popping"
    np.testing.assert_allclose(a.record.positions, b.record.positions)
    c = pipe(music, "waltz", seed=3, steps=4)
    assert not np.allclose(c.record.positions, a.record.positions)
    # no seam: chained windows placed in the world agree on every overlap, so the cross-fade joins equal poses
    x0 = pipe._sample(torch.as_tensor(np.stack([music[i * 8:i * 8 + 16] for i in range(4)])),
                      pipe.genre_embeddings[0].expand(4, -1), seed=0, steps=4, guidance=2.0, hop=8)
    world = pipe.world_windows(x0, 8)
    for prev, nxt in zip(world[:-1], world[1:]):
        np.testing.assert_allclose(nxt[:8, LAYOUT.root], prev[8:, LAYOUT.root], atol=1e-4)
        np.testing.assert_allclose(decode(nxt[:8]).positions, decode(prev[8:]).positions, atol=1e-3)
    with pytest.raises(InputError, match="unknown genre 'tap'"):
        pipe(music, "tap")
    # a step callback sees every step's clean-motion prediction and leaves the samples as they were
    seen: list[tuple[int, tuple[int, ...]]] = []
    windows = np.stack([music[:16], music[8:24]])
    plain = pipe.sample_windows(windows, ["popping", "waltz"], seed=2, steps=4)
    watched = pipe.sample_windows(windows, ["popping", "waltz"], seed=2, steps=4,
                                  on_step=lambda i, x0: seen.append((i, tuple(x0.shape))))
    np.testing.assert_array_equal(watched, plain)
    assert [i for i, _ in seen] == [0, 1, 2, 3] and seen[0][1] == (2, 16, LAYOUT.dim)
    with pytest.raises(InputError, match="shorter than one window"):
        pipe(music[:10], "waltz")
    (tmp_path / "run" / "model.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="model.pt"):
        DancePipeline.from_pretrained(tmp_path / "run")


def test_generate_command_end_to_end(tmp_path, demo_workspace, capsys) -> None:
    """A tiny run directory, real catalog music and a real audio file, npz and BVH out, bad input refused."""
    import json

    import soundfile as sf

    from encoders.motion.bvh import read_bvh
    from encoders.motion.record import MotionRecord
    from indexer.datasets import examples_for_split
    from ui.cli import main

    run = _tiny_run(tmp_path)
    clip = examples_for_split(demo_workspace, "test")[0].clip_id
    out = tmp_path / "dance.npz"
    assert main(["generate", "--clip", str(clip), "--home", str(demo_workspace.home), "--genre", "waltz",
                 "--run", str(run), "--seconds", "6", "--steps", "3", "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rec = MotionRecord.load(out)
    assert rec.num_frames == 180 and rec.rotations_6d is not None and payload["genre"] == "waltz"
    assert payload["music_beats"] > 0 and payload["windows"] == 22
    # an audio file: 5 s of clicks at 120 BPM
    sr = 22050
    y = np.zeros(5 * sr, dtype=np.float32)
    for k in range(10):
        y[int(k * 0.5 * sr):int(k * 0.5 * sr) + 400] = np.sin(np.arange(400) * 0.3) * 0.8
    sf.write(tmp_path / "clicks.wav", y, sr)
    bvh = tmp_path / "dance.bvh"
    assert main(["generate", "--music", str(tmp_path / "clicks.wav"), "--genre", "popping", "--run", str(run),
                 "--steps", "2", "--out", str(bvh)]) == 0
    assert read_bvh(bvh).to_record().num_frames == 150
    # the foot lock: the same dance with the root moved back under the planted feet, said in the report
    locked = tmp_path / "locked.npz"
    assert main(["generate", "--clip", str(clip), "--home", str(demo_workspace.home), "--genre", "waltz",
                 "--run", str(run), "--seconds", "6", "--steps", "3", "--foot-lock", "--out", str(locked),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["foot_lock"] is True
    held = MotionRecord.load(locked)
    np.testing.assert_allclose(held.positions[..., 1], rec.positions[..., 1], atol=1e-4)    # heights kept
    np.testing.assert_allclose(held.rotations_6d, rec.rotations_6d, atol=1e-5)              # shape kept

    # inpainting from the command line: keep the body of a one-window motion, generate the hands
    piece = tmp_path / "piece.npz"
    rec.slice(0, 16).save(piece)
    edited = tmp_path / "edited.npz"
    assert main(["generate", "--clip", str(clip), "--home", str(demo_workspace.home), "--genre", "waltz",
                 "--run", str(run), "--steps", "2", "--edit", str(piece), "--keep", "body", "--genre-guidance", "4",
                 "--out", str(edited), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["edit"]["keep"] == ["body"] and payload["genre_guidance"] == 4.0
    np.testing.assert_allclose(MotionRecord.load(edited).positions[:, :22], rec.positions[:16, :22], atol=1e-3)

    def cli(*args: str) -> tuple[int, str]:
        try:
            rc = main(["generate", *args, "--run", str(run)])
        except SystemExit as exc:                       # argparse's own usage errors
            rc = exc.code
        return rc, capsys.readouterr().err

    sf.write(tmp_path / "silence.wav", np.zeros(5 * sr, dtype=np.float32), sr)
    cases = [(["--music", str(tmp_path / "silence.wav"), "--genre", "waltz", "--out", str(out)], 1, "silent"),
             (["--clip", str(clip), "--home", str(demo_workspace.home), "--genre", "waltz", "--edit", str(piece),
               "--keep", "body", "--foot-lock", "--out", str(out)], 2, "--foot-lock does not apply"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "tap", "--out", str(out)], 1, "unknown genre 'tap'"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "waltz", "--seconds", "9", "--out", str(out)], 1,
              "shorter than --seconds"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "waltz", "--out", str(tmp_path / "d.mp4")], 2, ".npz or .bvh"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "waltz", "--seconds", "1", "--out", str(out)], 2, "--seconds"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "waltz", "--edit", str(piece), "--out", str(out)], 2,
              "go together"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "waltz", "--edit", str(piece), "--keep", "feet",
               "--out", str(out)], 1, "unknown joint group 'feet'"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "waltz", "--edit", str(out), "--keep", "body",
               "--out", str(edited)], 1, "one window"),
             (["--music", str(tmp_path / "clicks.wav"), "--genre", "waltz", "--edit", str(tmp_path / "clicks.wav"),
               "--keep", "body", "--out", str(edited)], 1, "clicks.wav")]
    for args, want, msg in cases:
        rc, err = cli(*args)
        assert rc == want and msg in err and "Traceback" not in err, (args, err)


def test_shipped_generator_loads_and_dances() -> None:
    from generation.diffusion.cli import DEFAULT_RUN
    from generation.diffusion.pipeline import DancePipeline

    if not (DEFAULT_RUN / "model.pt").is_file():
        pytest.skip("no shipped generator in models/generator")
    pipe = DancePipeline.from_pretrained(DEFAULT_RUN)
    assert len(pipe.genres) == 18 and pipe.model_id.startswith("gcdance-")
    music = np.random.default_rng(0).normal(size=(120, 35)).astype(np.float32)
    out = pipe(music, "waltz", steps=4)
    assert out.record.positions.shape == (120, 52, 3) and np.isfinite(out.record.positions).all()


def test_genre_guidance_weight_reduces_to_plain_guidance_and_changes_the_sample() -> None:
    """Compositional guidance: w_g = w is the single-weight formula; another w_g moves the sample."""
    from generation.diffusion.sampling import guided_prediction

    model = _model()
    for name, p in model.named_parameters():      # open the FiLM gates so the genre matters
        if "to_gamma" in name or "to_beta" in name:
            torch.nn.init.normal_(p, std=0.5)
    model.eval()
    x, _, music, genre = _inputs()
    with torch.no_grad():
        plain = guided_prediction(model, x, 500, music, genre, 2.0)[0]
        same = guided_prediction(model, x, 500, music, genre, 2.0, genre_guidance=2.0)[0]
        three = guided_prediction(model, x, 500, music, genre, 2.0, genre_guidance=2.0 + 1e-9)[0]  # the 3-pass path
        strong = guided_prediction(model, x, 500, music, genre, 2.0, genre_guidance=6.0)[0]
    torch.testing.assert_close(plain, same)
    torch.testing.assert_close(plain, three, atol=1e-4, rtol=1e-4)
    assert (strong - plain).abs().mean() > 1e-3


def test_pipeline_edit_keeps_what_was_asked_and_generates_the_rest(tmp_path) -> None:
    from encoders.errors import InputError
    from generation.diffusion.editing import EditSpec
    from generation.diffusion.pipeline import DancePipeline

    pipe = DancePipeline.from_pretrained(_tiny_run(tmp_path))
    music = np.random.default_rng(1).normal(size=(16, 35)).astype(np.float32)
    source = pipe(music, "popping", seed=7, steps=3).record           # a 16-frame dance standing in the world
    # keep the body, generate the hands
    out = pipe.edit(source, music, "waltz", EditSpec(("body",)), seed=1, steps=3).record
    np.testing.assert_allclose(out.trans, source.trans, atol=1e-4)
    np.testing.assert_allclose(out.positions[:, :22], source.positions[:, :22], atol=1e-3)
    assert np.abs(out.positions[:, 22:] - source.positions[:, 22:]).max() > 1e-3
    # keep the first 8 frames (0.267 s), continue them
    head = source.slice(0, 8)
    cont = pipe.edit(head, music, "waltz", EditSpec.parse(["0:0.267"]), seed=1, steps=3).record
    assert cont.num_frames == 16
    np.testing.assert_allclose(cont.positions[:8], source.positions[:8], atol=1e-3)
    # in-betweening: keep the first and the last frame
    ends = pipe.edit(source, music, "waltz", EditSpec.parse(["0:0.04", "0.5:0.6"]), seed=1, steps=3).record
    np.testing.assert_allclose(ends.positions[[0, 15]], source.positions[[0, 15]], atol=1e-3)
    assert np.abs(ends.positions[5:10] - source.positions[5:10]).max() > 1e-3
    with pytest.raises(InputError, match="unknown joint group 'feet'"):
        EditSpec.parse(["feet"])
    with pytest.raises(InputError, match="nothing to keep"):
        EditSpec.parse([])
    with pytest.raises(InputError, match="one window"):
        pipe.edit(pipe(np.concatenate([music, music]), "waltz", steps=2).record, music, "waltz", EditSpec(("body",)))


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
def test_overlapping_upsampling_keeps_shapes_and_couples_neighbouring_tokens(stride: int) -> None:
    """Each frame of the overlapping upsampler hears two tokens, so changing one token moves frames beyond
    its own ``stride`` frames; the legacy upsampler's tokens each write only their own frames."""
    import dataclasses

    for overlap in (False, True):
        cfg = dataclasses.replace(TINY, window_frames=24, time_stride=stride, overlap_upsampling=overlap)
        torch.manual_seed(0)
        expert = GCDanceDenoiser(cfg).body
        h = torch.randn(1, 24 // stride, cfg.d_model)
        out = expert.decode(h)
        assert out.shape == (1, 24, LAYOUT.body_dims.size)
        h2 = h.clone()
        h2[0, 2] += 1.0                                      # token 2 owns frames 2*stride .. 3*stride-1
        moved = (expert.decode(h2) - out).abs().sum(-1)[0] > 1e-6
        own = torch.zeros(24, dtype=torch.bool)
        own[2 * stride:3 * stride] = True
        assert bool(moved[own].all())
        assert bool(moved[~own].any()) == overlap
    assert DenoiserConfig().overlap_upsampling is False     # saved runs without the key load as trained


def test_chain_ramps_start_at_the_earlier_window_and_smootherstep_is_flat_at_both_ends() -> None:
    from generation.diffusion.pipeline import CHAIN_RAMPS, chain_ramp

    for kind in CHAIN_RAMPS:
        r = chain_ramp(kind, 60)
        assert r.shape == (60,) and r[0] == 0.0 and np.all(np.diff(r) >= 0)
    s = chain_ramp("smootherstep", 600)
    assert s[-1] > 0.99 and abs(s[300] - 0.5) < 0.01
    v = np.diff(s)                                   # velocity ~0 at both ends, largest in the middle
    assert v[0] < 1e-6 and v[-1] < 1e-4 and v.argmax() in range(290, 310)
    with pytest.raises(ValueError, match="unknown chain ramp"):
        chain_ramp("cubic", 10)
