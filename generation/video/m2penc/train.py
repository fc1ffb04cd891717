"""Stage-1 training of M2PEnc (paper 3.4): L_guid + heat_weight x L_heat, AdamW, a wall-clock budget.

The paper's two named terms stay: ``guid`` (L1 between predicted and rendered guidance) and ``heat`` (heatmap
MSE). Why MSE for the heatmaps: the paper's printed L_heat formula is garbled (``exp(k^)/HWC - k``); its text says
"such as the mean squared error", the standard loss of heatmap pose estimation.

Why the extra, switchable terms (run 1 trained with all of them off and learned a blank, music-blind image):

- ``body_weight`` (lambda): L_guid is an L1 *weighted* by ``1 + lambda * dilate(mask_gt, body_dilate px)`` and
  normalised by the mean weight. Plain L1 over 64 x 64 maps whose body covers ~9 % of the pixels (~17 % dilated
  by 2 px) is minimised by the per-pixel median, i.e. background; at that point the per-pixel L1 subgradients
  cancel and the FC receives almost no gradient (measured on run 1: |grad fc.weight| 1.7e-4 against 0.075 at
  init), so the music has no leverage. lambda = 5 ~ (1 - f) / f for the dilated body fraction f ~ 0.17 gives the
  body region about the same total weight as the background. 0 = the paper's plain L1.
- ``temporal_weight``: L1 between the predicted and the real frame-to-frame change (same body weights), so a
  still image pays for every real movement. 0 = off.
- ``energy_weight``: per frame, |mean |d pred| - mean |d truth|| summed and divided by the truth's summed change
  (scale-free, 1 for a still output). Pointwise losses prefer a still image whenever the phase of a movement is
  uncertain; this term only asks the output to move *as much as* the truth, *when* it moves (on the beat), so it
  is what rewards beat-locked motion. 0 = off.
- ``heat_weight``: the MSE of 18 Gaussians (sigma 1.5 px) over a 64 x 64 map is ~0.0017 for an all-zero
  prediction; weight 100 puts that on the scale of L_guid's blank-image value (~0.15) so keypoints matter.

Learning rate: the paper's 1e-5 for 20,000 epochs on 8 A100s does not move a model in minutes of CPU; we use a
linear warm-up (``warmup_steps``) to ``lr``, then a cosine decay to ``lr * lr_min_ratio`` over the invocation's
wall-clock budget (or ``max_steps``, whichever ends first).

Resumable: ``RUN/state.pt`` (model, optimiser, step, seconds, RNG, history, best) is written every
``checkpoint_seconds`` and at the end; training again into the same folder continues from it (refused when the
configuration differs). ``minutes`` is the budget of one invocation. The checkpoint kept in ``RUN/model.pt``
is the one with the lowest validation loss (fixed windows of the val split).
"""
from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from encoders.atomic_io import atomic_write_bytes, atomic_write_json
from encoders.errors import InputError

from .data import ClipPairs, DataConfig, heatmaps_from_keypoints, split_of, window_starts
from .model import M2PEnc, M2PEncConfig
from .run_dir import save_pretrained


@dataclass
class TrainConfig:
    """Optimisation settings; ``config.json["train"]``."""

    window: int = 24                  # frames per training window at 15 fps (1.6 s, ~3 beats; the paper: 75 = 5 s)
    batch_size: int = 4
    lr: float = 2e-3                  # peak lr after the warm-up
    weight_decay: float = 0.01
    heat_weight: float = 100.0        # run 1: 10 (see the module docstring)
    body_weight: float = 5.0          # lambda of the body-weighted L1; 0 = plain L1 (run 1)
    body_dilate: int = 2              # px the ground-truth mask is dilated by for the weights
    temporal_weight: float = 1.0      # frame-difference L1; 0 = off (run 1)
    energy_weight: float = 0.1        # per-frame motion-energy match; 0 = off (run 1)
    warmup_steps: int = 50            # linear warm-up; 0 = none
    lr_min_ratio: float = 0.05        # cosine decay ends at lr * this; 1 = constant lr (run 1)
    grad_clip: float = 1.0
    minutes: float = 20.0             # wall-clock budget of one invocation
    max_steps: int = 1_000_000
    eval_every: int = 50              # steps between validation passes
    val_windows: int = 24             # fixed validation windows (evenly over the val clips)
    checkpoint_seconds: float = 120.0
    seed: int = 0
    num_threads: int = 1              # 1 on shared CPUs (no spin-waiting threads)

    def validate(self) -> "TrainConfig":
        if self.window < 2 or self.batch_size < 1 or self.lr <= 0 or self.minutes <= 0 or self.eval_every < 1:
            raise InputError(None, "bad M2PEnc train config", field="train",
                             expected="window >= 2, batch_size >= 1, lr > 0, minutes > 0, eval_every >= 1",
                             got=str(asdict(self)))
        for name in ("heat_weight", "body_weight", "temporal_weight", "energy_weight", "body_dilate",
                     "warmup_steps"):
            if getattr(self, name) < 0:
                raise InputError(None, "bad M2PEnc loss setting", field=name, expected=">= 0",
                                 got=str(getattr(self, name)))
        if not 0 < self.lr_min_ratio <= 1:
            raise InputError(None, "bad lr floor", field="lr_min_ratio", expected="in (0, 1]",
                             got=str(self.lr_min_ratio))
        return self

    def lr_at(self, step: int, progress: float) -> float:
        """Warm-up over ``warmup_steps`` steps, then cosine from ``lr`` to ``lr * lr_min_ratio`` as ``progress``
        (the fraction of the budget used) goes 0 -> 1."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        cos = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.lr * (self.lr_min_ratio + (1.0 - self.lr_min_ratio) * cos)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate()


RESUME_KEYS = ("window", "batch_size", "lr", "weight_decay", "heat_weight", "body_weight", "body_dilate",
               "temporal_weight", "energy_weight", "seed")
"""Settings a resumed run must share with the one it continues (the budget and cadence may change)."""


def body_weights(guidance: torch.Tensor, lam: float, dilate: int) -> torch.Tensor:
    """(B, T, 1, S, S) per-pixel weights ``1 + lam * dilate(mask > 0.5, dilate px)`` of ground-truth guidance
    (B, T, 11, S, S) in [0, 1] (the mask is the last channel)."""
    mask = (guidance[:, :, -1:] > 0.5).float()
    if dilate > 0:
        b, t = mask.shape[:2]
        mask = F.max_pool2d(mask.flatten(0, 1), 2 * dilate + 1, stride=1, padding=dilate).reshape(mask.shape)
    return 1.0 + lam * mask


def loss_terms(guid: torch.Tensor, heat: torch.Tensor, target_guid: torch.Tensor, target_heat: torch.Tensor,
               cfg: "TrainConfig") -> dict[str, torch.Tensor]:
    """The named terms of predicted (B, T, C, S, S) guidance / heatmaps against the targets, and their sum.

    ``guid`` (L_guid: L1, body-weighted when ``body_weight`` > 0), ``heat`` (L_heat: MSE), ``temporal`` and
    ``energy`` (zero tensors when their weight is 0); ``loss`` = guid + heat_weight * heat + temporal_weight *
    temporal + energy_weight * energy. See the module docstring for why each exists.
    """
    w = body_weights(target_guid, cfg.body_weight, cfg.body_dilate) if cfg.body_weight > 0 else None
    err = (guid - target_guid).abs()
    # weighted mean over pixels and channels (w broadcasts over the C channels)
    l_guid = err.mean() if w is None else (err * w).sum() / (w.sum() * err.shape[2])
    l_heat = F.mse_loss(heat, target_heat)
    zero = guid.new_zeros(())
    l_temp, l_energy = zero, zero
    if guid.shape[1] > 1 and (cfg.temporal_weight > 0 or cfg.energy_weight > 0):
        d_pred = guid[:, 1:] - guid[:, :-1]
        d_true = target_guid[:, 1:] - target_guid[:, :-1]
        if cfg.temporal_weight > 0:
            dt = (d_pred - d_true).abs()
            if w is None:
                l_temp = dt.mean()
            else:
                wt = torch.maximum(w[:, 1:], w[:, :-1])
                l_temp = (dt * wt).sum() / (wt.sum() * dt.shape[2])
        if cfg.energy_weight > 0:
            e_pred = d_pred.abs().mean(dim=(2, 3, 4))                   # (B, T-1) motion per frame
            e_true = d_true.abs().mean(dim=(2, 3, 4))
            l_energy = (e_pred - e_true).abs().sum() / e_true.sum().clamp_min(1e-6)
    loss = (l_guid + cfg.heat_weight * l_heat + cfg.temporal_weight * l_temp + cfg.energy_weight * l_energy)
    return {"loss": loss, "guid": l_guid, "heat": l_heat, "temporal": l_temp, "energy": l_energy}


def losses(model: M2PEnc, batch: dict[str, torch.Tensor], cfg: "TrainConfig") -> dict[str, torch.Tensor]:
    guid, heat = model(batch["music"])
    return loss_terms(guid, heat, batch["guidance"], batch["heatmaps"], cfg)


def make_batch(clips: Sequence[ClipPairs], picks: Sequence[tuple[int, int]], window: int,
               sigma: float) -> dict[str, torch.Tensor]:
    """Tensors of the windows ``(clip index, start)``: music (B, W, F), guidance (B, W, 11, S, S) in [0, 1],
    heatmaps (B, W, 18, S, S)."""
    music, guid, heat = [], [], []
    for ci, s in picks:
        c = clips[ci]
        sl = slice(s, s + window)
        music.append(c.music_input()[sl])
        guid.append(c.guidance[sl])
        heat.append(heatmaps_from_keypoints(c.keypoints[sl], c.valid[sl], c.guidance.shape[-1], sigma))
    return {"music": torch.from_numpy(np.stack(music).astype(np.float32)),
            "guidance": torch.from_numpy(np.stack(guid)).float().div_(255.0),
            "heatmaps": torch.from_numpy(np.stack(heat))}


def music_statistics(clips: Sequence[ClipPairs]) -> tuple[np.ndarray, np.ndarray]:
    allm = np.concatenate([c.music_input() for c in clips]).astype(np.float64)
    return allm.mean(axis=0).astype(np.float32), allm.std(axis=0).astype(np.float32)


def validation_picks(clips: Sequence[ClipPairs], window: int, count: int) -> list[tuple[int, int]]:
    every = [(i, s) for i, c in enumerate(clips) for s in window_starts(len(c), window)]
    if len(every) <= count:
        return every
    return [every[int(k)] for k in np.linspace(0, len(every) - 1, count).round()]


@torch.no_grad()
def evaluate_loss(model: M2PEnc, clips: Sequence[ClipPairs], picks: Sequence[tuple[int, int]], cfg: TrainConfig,
                  sigma: float) -> dict[str, float]:
    model.eval()
    tot = {"loss": 0.0, "guid": 0.0, "heat": 0.0, "temporal": 0.0, "energy": 0.0}
    for i in range(0, len(picks), cfg.batch_size):
        chunk = picks[i:i + cfg.batch_size]
        out = losses(model, make_batch(clips, chunk, cfg.window, sigma), cfg)
        for k in tot:
            tot[k] += float(out[k]) * len(chunk)
    model.train()
    return {k: v / max(len(picks), 1) for k, v in tot.items()}


def train_m2penc(clips: Sequence[ClipPairs], out: str | Path, model_config: M2PEncConfig | None = None,
                 data_config: DataConfig = DataConfig(), train_config: TrainConfig = TrainConfig(),
                 tower: dict[str, str] | None = None, info: dict[str, Any] | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Train on the train-split clips, select on the val split, write the run to ``out``; returns a summary.

    Clips without a split in their meta count as train; with no val clip, the last step's weights are kept.
    """
    from tqdm import tqdm

    cfg = train_config.validate()
    out = Path(out)
    for c in clips:                 # the input follows the run's data config, which the pipeline will read back
        c.beat_phase = data_config.beat_phase
    train = [c for c in clips if split_of(c) == "train" and len(c) >= cfg.window]
    val = [c for c in clips if split_of(c) == "val" and len(c) >= cfg.window]
    if not train:
        raise InputError(None, "no training windows", field="clips",
                         expected=f"train-split clips of >= {cfg.window} frames", got=f"{len(clips)} clips")
    music_dim = train[0].music_input().shape[1]
    if model_config is None:
        model_config = M2PEncConfig(music_dim=music_dim, size=int(train[0].guidance.shape[-1]))
    if model_config.music_dim != music_dim:
        raise InputError(None, "music width and model disagree", field="music_dim",
                         expected=str(model_config.music_dim),
                         got=str(music_dim))
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = M2PEnc(model_config)
    model.set_normalisation(*map(torch.from_numpy, music_statistics(train)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, seconds, history = 0, 0.0, []
    best: dict[str, Any] = {"val": float("inf"), "step": 0, "state": None}
    state_path = out / "state.pt"
    if state_path.is_file():
        step, seconds, history, best, rng = _resume(state_path, model, opt, cfg, model_config)
    picks_val = validation_picks(val, cfg.window, cfg.val_windows)
    sigma = data_config.heat_sigma
    lengths = np.array([len(c) - cfg.window + 1 for c in train], dtype=np.float64)
    probs = lengths / lengths.sum()                                    # every window equally likely
    model.train()
    start_step = step
    t0 = time.perf_counter()
    last_ckpt = t0
    budget = cfg.minutes * 60.0
    bar = tqdm(desc="m2penc train", unit="step", disable=not progress, initial=step)
    running = None
    windows_seen = int(best.get("windows_seen", 0))
    while step < cfg.max_steps and time.perf_counter() - t0 < budget:
        ci = rng.choice(len(train), size=cfg.batch_size, p=probs)
        picks = [(int(i), int(rng.integers(0, len(train[i]) - cfg.window + 1))) for i in ci]
        progress_frac = max((time.perf_counter() - t0) / budget, (step - start_step) / max(cfg.max_steps - start_step, 1))
        lr = cfg.lr_at(step, progress_frac)
        for group in opt.param_groups:
            group["lr"] = lr
        out_l = losses(model, make_batch(train, picks, cfg.window, sigma), cfg)
        opt.zero_grad(set_to_none=True)
        out_l["loss"].backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        windows_seen += len(picks)
        vals = {k: float(v.detach()) for k, v in out_l.items()}
        running = vals if running is None else {k: 0.9 * running[k] + 0.1 * vals[k] for k in vals}
        bar.update(1)
        bar.set_postfix(loss=f"{running['loss']:.4f}", guid=f"{running['guid']:.4f}", heat=f"{running['heat']:.5f}")
        last = step >= cfg.max_steps or time.perf_counter() - t0 >= budget
        if step % cfg.eval_every == 0 or last:
            v = evaluate_loss(model, val, picks_val, cfg, sigma) if picks_val else {}
            entry = {"step": step, "seconds": round(seconds + time.perf_counter() - t0, 1), "lr": lr,
                     "train": {k: round(x, 6) for k, x in running.items()},
                     "val": {k: round(x, 6) for k, x in v.items()}}
            history.append(entry)
            score = v.get("loss", running["loss"])
            if score < best["val"]:
                best = {"val": score, "step": step,
                        "state": {k: t.detach().clone() for k, t in model.state_dict().items()}}
        best["windows_seen"] = windows_seen
        if time.perf_counter() - last_ckpt >= cfg.checkpoint_seconds or last:
            _checkpoint(state_path, model, opt, step, seconds + time.perf_counter() - t0, rng, history, best, cfg,
                        model_config)
            last_ckpt = time.perf_counter()
    bar.close()
    seconds += time.perf_counter() - t0
    _checkpoint(state_path, model, opt, step, seconds, rng, history, best, cfg, model_config)
    summary = {"steps": step, "windows_seen": windows_seen, "train_seconds": round(seconds, 1),
               "best_step": best["step"], "best_val": float(best["val"]), "clips_train": len(train),
               "clips_val": len(val), **(info or {})}
    save_pretrained(out, model, data_config, asdict(cfg), tower, summary,
                    state=best["state"] if best["state"] is not None else None)
    atomic_write_json(out / "history.json", history)
    mean, std = model.music_mean.numpy(), model.music_std.numpy()
    atomic_write_json(out / "music_stats.json", {"about": "train-split mean / std (floored at 1e-3) of the model's "
                                                 "per-frame music input; also buffers of model.pt",
                                                 "mean": [round(float(x), 6) for x in mean],
                                                 "std": [round(float(x), 6) for x in std]})
    return summary


def _checkpoint(path: Path, model: M2PEnc, opt, step: int, seconds: float, rng, history, best, cfg: TrainConfig,
                model_config: M2PEncConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "seconds": seconds,
                "rng": rng.bit_generator.state, "history": history, "best": best, "train": asdict(cfg),
                "model_config": model_config.to_dict()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _resume(path: Path, model: M2PEnc, opt, cfg: TrainConfig, model_config: M2PEncConfig):
    try:
        st = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise InputError(path, f"cannot read the training state to resume: {exc}") from exc
    if st.get("model_config") != model_config.to_dict():
        raise InputError(path, "cannot resume: the model configuration differs", field="model",
                         expected=str(st.get("model_config")), got=str(model_config.to_dict()))
    old = st.get("train", {})
    diff = [k for k in RESUME_KEYS if old.get(k) != getattr(cfg, k)]
    if diff:
        raise InputError(path, "cannot resume: training settings differ", field=diff[0], expected=str(old.get(diff[0])),
                         got=str(getattr(cfg, diff[0])))
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["optimizer"])
    rng = np.random.default_rng()
    rng.bit_generator.state = st["rng"]
    return int(st["step"]), float(st["seconds"]), list(st["history"]), dict(st["best"]), rng


def train_from_corpus(corpus: str | Path, out: str | Path, cache: str | Path | None = None,
                      tower_run: str | Path | None = None, model_config: M2PEncConfig | dict | None = None,
                      data_config: DataConfig = DataConfig(), train_config: TrainConfig = TrainConfig(),
                      progress: bool = True) -> dict[str, Any]:
    """Render (or reuse) the SDGPip pairs of ``corpus``'s train and val clips, then :func:`train_m2penc`.

    ``cache`` defaults to ``OUT/pairs``; ``tower_run``: a retrieval run whose music-tower tokens are added to
    the input (None: the 35-d features only). ``model_config``: a config, or a dict of :class:`M2PEncConfig`
    fields to change (``music_dim`` and ``size`` always follow the data).
    """
    from .data import build_cache
    from .tokens import MusicTower

    out = Path(out)
    cache = Path(cache) if cache is not None else out / "pairs"
    tower = MusicTower(tower_run) if tower_run is not None else None
    clips = build_cache(corpus, cache, data_config, splits=("train", "val"), tower=tower, progress=progress)
    tower_info = {"run": str(Path(tower_run).resolve()), "identity": tower.identity} if tower is not None else None
    if not isinstance(model_config, M2PEncConfig):
        model_config = M2PEncConfig(**{**(model_config or {}), "music_dim": clips[0].music_input().shape[1],
                                       "size": data_config.size})
    return train_m2penc(clips, out, model_config, data_config, train_config, tower_info,
                        {"corpus": str(Path(corpus).resolve()), "cache": str(cache.resolve())}, progress)
