"""Training the denoiser on the catalog's 4-s windows (GCDance III-B), with a wall-clock budget.

One step: a batch of canonical, normalised training windows; a random diffusion step per window; the
motion noised by the cosine schedule; the denoiser predicts the clean motion from the noisy one, the
music and the genre prompt's embedding; music and genre are each dropped (replaced by learned nulls)
with probability ``cond_drop`` so classifier-free guidance works at sampling. Losses eq. 5-8 are
combined by ``loss_combination`` (``fixed`` weights, ``nash`` or ``aligned``; ``generation.diffusion.mtl``).
Every ``eval_every`` steps the simple loss on a fixed set of validation windows (fixed steps and noise)
decides which checkpoint is kept. The budget in minutes ends training early, so the documented recipe
fits a machine's time whatever its speed (``steps`` bounds it too).
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from encoders.cliutil import info
from encoders.errors import DanceSearchError

from ..windows import WindowDataset, WindowStore
from .adversarial_critic import AdversarialConfig, fit_adversarial_critic
from .denoiser import DenoiserConfig, GCDanceDenoiser
from .genre_code import check_genre_code, genre_code
from .genre_critic import CRITIC_KINDS, CriticConfig, critic_loss, fit_genre_critic
from .kinetic_loss import kinetic_energy_loss
from .losses import LOSS_NAMES, diffusion_losses, pose
from .music_swap import swap_music
from .music_tower import MusicTowerFeatures
from .mtl import METHODS, LossCombiner
from .popdg import vlb_loss
from .run_dir import GENRE_PROMPT, clear_snapshots, save_run, save_snapshot
from .sampled_critic import sample_chain_prediction, sampled_critic_loss
from .schedule import DDIMScheduler


CRITIC_MAX_BUDGET_SHARE = 0.5
"""The genre critic's fit stops after the epoch that passes this share of ``TrainConfig.minutes``: a guard against
a slow machine spending the denoiser's budget on the critic, not a setting (its 12 epochs took 114 s of the
recipe's 88 minutes on the 2 idle cores, 2%; 4 epochs took about a quarter of the 5.5-minute ablation screen).
When it acts, training says so and the run records ``genre_critic.epochs_run``."""


@dataclass
class TrainConfig:
    steps: int = 20000
    minutes: float = 80.0
    batch_size: int = 32
    lr: float = 4e-4
    weight_decay: float = 0.01
    warmup_steps: int = 300
    cond_drop: float = 0.15
    music_swap: float = 0.0
    """Share of training windows given another genre's music (motion and genre label kept): 0 trains on matching
    pairs only (the first shipped model); see ``music_swap.swap_music`` for why a share makes the prompt count."""
    loss_weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LOSS_NAMES, 1.0))
    """Fixed weights of eq. 5-8 (``losses.LOSS_NAMES``); a key left out weighs 1."""
    loss_combination: str = "fixed"
    vlb_weight: float = 0.001
    """POPDG 4.1 / iDDPM's L_hybrid: weight of L_vlb (bits per feature), added outside ``loss_combination``;
    used only by a denoiser with ``learned_variance`` (iDDPM's 0.001)."""
    eval_every: int = 250
    snapshot_every: int = 0
    """Also keep the weights every this many steps as ``RUN/snapshots/step_NNNNN.pt`` (0: off), so a checkpoint
    can be chosen afterwards by its samples (``bench/select_checkpoint.py``) rather than by the validation x0
    error, which did not track sample quality (v8, ``docs/results/generation.md``). About 25 MB each."""
    val_windows: int = 128
    seed: int = 0
    num_threads: int = 2
    text_backbone: str = "minilm"
    genre_code: str = "prompt"
    """What the genre FiLM adapter reads (``genre_code.GENRE_CODES``): ``prompt``, the prompt embeddings as they are
    (v1-v6), or ``whitened``, the same embeddings centred and whitened over the genre set so that every genre's
    code is equally far from every other's (``genre_code.py`` says why)."""
    music_tower_run: str | None = None
    """A CustomDancer retrieval run (e.g. ``models/demo``) whose frozen music tower gives the denoiser GCDance's
    high-level "FM" music features (``music_tower.py``); None trains on the 35-d features alone."""
    genre_loss_weight: float = 0.0
    """Weight of the frozen genre critic's cross-entropy on the predicted x0 (``genre_critic.py``), added outside
    ``loss_combination``; 0 trains without the critic (the first two shipped models)."""
    kinetic_loss_weight: float = 0.0
    """Weight of the kinetic-energy matching loss (``kinetic_loss.py``: each body joint's RMS speed over the
    window, predicted against real, as a log ratio), added outside ``loss_combination``; 0: off (v1-v9)."""
    critic_epochs: int = 12
    """Epochs of the critic's fit (``genre_critic.CriticConfig``); its time comes out of ``minutes``."""
    posture_critic_epochs: int = 40
    """Epochs of the posture critic's fit (``critic_kind`` posture / both; ``CriticConfig.posture_epochs``)."""
    critic_kind: str = "features"
    """Which critic judges (``genre_critic.CRITIC_KINDS``): ``features`` (v3), ``posture`` (FK posture
    statistics, ``posture_critic.py``) or ``both``."""
    sampled_critic_weight: float = 0.0
    """Weight of the critic's cross-entropy on the denoiser's own short DDIM chains from noise, with drawn genres
    (``sampled_critic.py``); 0: off. Needs ``genre_loss_weight`` > 0 (the critic is fitted for that loss)."""
    sampled_critic_windows: int = 8
    """Windows per sampled chain (taken from the head of the batch, with their music); used by the sampled-critic
    and the adversarial loss."""
    sampled_critic_steps: int = 4
    """DDIM steps of a sampled chain; it stops at a uniformly drawn one of them."""
    sampled_critic_every: int = 2
    """Run the sampled-critic / adversarial loss every this many steps (each costs up to
    ``sampled_critic_steps`` forward passes of ``sampled_critic_windows`` windows)."""
    adversarial_weight: float = 0.0
    """Weight of the learning (G+1)-class critic's cross-entropy on the denoiser's own sampled chains
    (``adversarial_critic.py``), added outside ``loss_combination``; 0: off. Independent of the frozen critic."""
    adversarial_pretrain_epochs: int = 12
    """Epochs of the adversarial critic's pre-fit on real windows (its time comes out of ``minutes``)."""
    adversarial_lr: float = 2e-4
    """Learning rate of the adversarial critic's online updates (one per sampled chain)."""
    mtl_update_every: int = 1
    """``nash`` / ``aligned``: recompute the task weights every this many steps (each update costs one backward
    pass per loss through the shared parameters; the Nash-MTL reference also updates every few steps)."""

    def __post_init__(self) -> None:
        """Refuse a value the trainer cannot use here, naming the field, rather than minutes later (after the
        critic's fit) as a division by zero or a raw KeyError."""
        check_genre_code(self.genre_code)
        for name in ("steps", "batch_size", "warmup_steps", "eval_every", "val_windows", "critic_epochs",
                     "mtl_update_every"):
            if getattr(self, name) < 1:
                raise DanceSearchError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.minutes <= 0 or self.lr <= 0:
            raise DanceSearchError(f"minutes and lr must be > 0, got {self.minutes} and {self.lr}")
        if self.snapshot_every < 0:
            raise DanceSearchError(f"snapshot_every must be >= 0 (0: off), got {self.snapshot_every}")
        for name in ("cond_drop", "music_swap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DanceSearchError(f"{name} is a share of windows, in [0, 1]; got {getattr(self, name)}")
        for name in ("genre_loss_weight", "sampled_critic_weight", "vlb_weight", "weight_decay",
                     "kinetic_loss_weight"):
            if getattr(self, name) < 0:
                raise DanceSearchError(f"{name} must be >= 0, got {getattr(self, name)}")
        unknown = sorted(set(self.loss_weights) - set(LOSS_NAMES))
        if unknown:
            raise DanceSearchError(f"unknown loss_weights key(s) {', '.join(unknown)}: the losses are "
                                   f"{', '.join(LOSS_NAMES)}")
        self.loss_weights = {**dict.fromkeys(LOSS_NAMES, 1.0), **self.loss_weights}   # a recipe may set some only
        if self.loss_combination not in METHODS:
            raise DanceSearchError(f"unknown loss_combination {self.loss_combination!r}: one of {', '.join(METHODS)}")
        if self.critic_kind not in CRITIC_KINDS:
            raise DanceSearchError(f"unknown critic_kind {self.critic_kind!r}: one of {', '.join(CRITIC_KINDS)}")
        if self.sampled_critic_weight > 0 and self.genre_loss_weight <= 0:
            raise DanceSearchError("sampled_critic_weight needs genre_loss_weight > 0: the critic is fitted for it")
        if self.adversarial_weight < 0 or self.adversarial_lr <= 0:
            raise DanceSearchError(f"adversarial_weight must be >= 0 and adversarial_lr > 0, got "
                                   f"{self.adversarial_weight} and {self.adversarial_lr}")
        for name in ("sampled_critic_windows", "sampled_critic_steps", "sampled_critic_every", "posture_critic_epochs",
                     "adversarial_pretrain_epochs"):
            if getattr(self, name) < 1:
                raise DanceSearchError(f"{name} must be >= 1, got {getattr(self, name)}")


def genre_embeddings(genres: list[str], backbone_name: str = "minilm") -> tuple[np.ndarray, str]:
    """(G, E) embeddings of each genre's prompt with the project's text backbone, and its identity."""
    from encoders.model.text import build_backbone

    backbone = build_backbone(backbone_name).eval()
    with torch.no_grad():
        emb = backbone([GENRE_PROMPT.format(genre=g) for g in genres]).float().numpy()
    return emb, str(getattr(backbone, "identity", backbone_name))


def train_denoiser(store: WindowStore, out: str | Path, denoiser: DenoiserConfig = DenoiserConfig(),
                   config: TrainConfig = TrainConfig(), progress: bool = True,
                   embeddings: tuple[np.ndarray, str] | None = None) -> dict[str, Any]:
    """Train on ``store``'s train split (validate on val), write the run directory ``out``, return the history."""
    if store.num_windows("train") < config.batch_size:
        raise DanceSearchError(f"only {store.num_windows('train')} training windows: fewer than one batch "
                               f"({config.batch_size}); ingest more clips with SMPL-X rotations")
    if store.config.window_frames != denoiser.window_frames:
        raise DanceSearchError(f"window cache gives {store.config.window_frames}-frame windows, the denoiser "
                               f"expects {denoiser.window_frames}")
    stale = clear_snapshots(out)
    if stale:
        info(f"removed {stale} snapshot(s) of the run previously trained into {out}")
    torch.manual_seed(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    normalizer = store.fit_normalizer("train")
    genres = store.genres
    emb, backbone_id = embeddings if embeddings is not None else genre_embeddings(genres, config.text_backbone)
    if emb.ndim != 2 or emb.shape[1] != denoiser.genre_dim:
        raise DanceSearchError(f"the genre prompts embed to {emb.shape[-1]} dims with text backbone {backbone_id!r}, "
                               f"but denoiser.genre_dim is {denoiser.genre_dim}: set denoiser.genre_dim to "
                               f"{emb.shape[-1]} in the recipe")
    emb = genre_code(emb, config.genre_code)
    genre_table = torch.as_tensor(emb, dtype=torch.float32)
    tower = None
    if config.music_tower_run:
        tower = MusicTowerFeatures.from_retrieval_run(config.music_tower_run, denoiser.d_model, denoiser.window_frames)
        denoiser = dataclasses.replace(denoiser, music_tower=tower.spec.to_dict())
    model = GCDanceDenoiser(denoiser)
    if tower is not None:
        model.music_tower.load_state_dict(tower.state_dict())
    sched = DDIMScheduler()
    combiner = LossCombiner(config.loss_combination,
                            importance=[config.loss_weights[k] for k in LOSS_NAMES],
                            update_every=config.mtl_update_every)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    lr_at = lambda s: min(1.0, (s + 1) / config.warmup_steps) * 0.5 * (1 + np.cos(np.pi * min(s / config.steps, 1.0)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    data = WindowDataset(store, "train", normalizer)
    loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(config.seed))
    val = _validation_batch(store, normalizer, genres, genre_table, config)
    shared = [p for p in model.parameters() if p.requires_grad]     # the frozen music tower takes no gradient
    history: list[dict[str, Any]] = []
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    start = time.perf_counter()                                 # the budget includes fitting the critic
    critic, critic_report = None, None
    if config.genre_loss_weight > 0:
        critic_config = CriticConfig(epochs=config.critic_epochs, posture_epochs=config.posture_critic_epochs,
                                     kind=config.critic_kind, seed=config.seed)
        critic, critic_report = fit_genre_critic(store, normalizer, critic_config,
                                                 progress=progress,
                                                 deadline=start + CRITIC_MAX_BUDGET_SHARE * config.minutes * 60)
        if critic_report["cut_short"]:
            cut = ", ".join(f"{kind} after {m['epochs_run']} of {m['epochs']} epochs"
                            for kind, m in critic_report["members"].items() if m["epochs_run"] < m["epochs"])
            info(f"genre critic: stopped early ({cut}), at {CRITIC_MAX_BUDGET_SHARE:.0%} of the "
                 f"{config.minutes:g}-minute budget")
    adversary, adversary_report = None, None
    if config.adversarial_weight > 0:
        adversary, adversary_report = fit_adversarial_critic(
            store, normalizer, AdversarialConfig(pretrain_epochs=config.adversarial_pretrain_epochs,
                                                 lr=config.adversarial_lr, seed=config.seed),
            progress=progress, deadline=start + CRITIC_MAX_BUDGET_SHARE * config.minutes * 60)
        if adversary_report["cut_short"]:
            info(f"adversarial critic: pre-fit stopped after {adversary_report['epochs_run']} of "
                 f"{config.adversarial_pretrain_epochs} epochs, at {CRITIC_MAX_BUDGET_SHARE:.0%} of the budget")
    step, seen = 0, 0
    # the sampled chains (sampled-critic loss, adversarial loss) draw from a stream of their own, so turning them
    # on leaves the main loss's draws as they were; with both on they draw one after the other from the same
    # stream, so their chains are different samples (each alone draws exactly what v5 / v6 drew)
    chain_stream = torch.Generator().manual_seed(config.seed + 2)

    def save_checkpoint() -> None:
        """Write the run directory with the best weights so far (each new best is saved at once, so a run
        stopped early keeps its best checkpoint)."""
        run_data = {"windows_train": store.num_windows("train"), "windows_val": store.num_windows("val"),
                    "cache_hash": store.content_hash, "best_step": best[1], "best_val_simple": best[0],
                    "windows_seen": seen, "train_seconds": round(time.perf_counter() - start, 1),
                    "genre_critic": critic_report, "adversarial_critic": adversary_report}
        save_run(out, model, best[2], normalizer, genres, emb, asdict(config), backbone_id, history, run_data)

    bar = tqdm(total=config.steps, desc="train generator", unit="step", disable=not progress)
    running: dict[str, float] = {}
    counts: dict[str, int] = {}

    def evaluate() -> bool:
        """Validate, log a history row (training losses averaged since the last row), keep the best weights;
        True when this is a new best."""
        nonlocal best, running, counts
        row = {"step": step, "windows": seen, "seconds": round(time.perf_counter() - start, 1),
               **{f"train_{k}": v / counts[k] for k, v in running.items()}, "val_simple": _val_loss(model, val)}
        running, counts = {}, {}
        history.append(row)
        bar.set_postfix(val=f"{row['val_simple']:.4f}")
        if row["val_simple"] < best[0]:
            best = (row["val_simple"], step, copy.deepcopy(model.state_dict()))
            return True
        return False
    while step < config.steps and time.perf_counter() - start < config.minutes * 60:
        for batch in loader:
            model.train()
            x0, music = batch["motion"], batch["music"]
            b = len(x0)
            music, _ = swap_music(music, batch["genre"], config.music_swap)
            g = genre_table[batch["genre"]]
            t = torch.randint(0, sched.num_train_timesteps, (b,))
            xt = sched.add_noise(x0, torch.randn_like(x0), t)
            drop_music = torch.rand(b) < config.cond_drop
            drop_genre = torch.rand(b) < config.cond_drop
            pred = model(xt, t, music, g, drop_music=drop_music, drop_genre=drop_genre,
                         return_variance=model.config.learned_variance)
            pred, var = pred if model.config.learned_variance else (pred, None)      # POPDG 4.1
            posed = pose(pred, x0, normalizer)
            losses = diffusion_losses(pred, x0, normalizer, posed)
            total, _ = combiner.combine([losses[k] for k in LOSS_NAMES], shared)
            if config.kinetic_loss_weight > 0:                 # kinetic_loss.py, outside the combiner
                losses["kinetic"] = kinetic_energy_loss(posed.pred_positions, posed.target_positions)
                total = total + config.kinetic_loss_weight * losses["kinetic"]
            if var is not None:                                # iDDPM's L_vlb, outside the multi-task combiner
                losses["vlb"] = vlb_loss(sched, x0, xt, t, pred, var)
                total = total + config.vlb_weight * losses["vlb"]
            if critic is not None:                             # genre_critic.py, outside the combiner too
                losses["genre"] = critic_loss(critic, pred, batch["genre"], sched.alphas_cumprod[t], ~drop_genre)
                total = total + config.genre_loss_weight * losses["genre"]
            if critic is not None and config.sampled_critic_weight > 0 and step % config.sampled_critic_every == 0:
                k = min(b, config.sampled_critic_windows)              # sampled_critic.py: the critic on samples
                losses["sampled_genre"] = sampled_critic_loss(model, sched, critic, music[:k], genre_table,
                                                              config.sampled_critic_steps, chain_stream)
                total = total + config.sampled_critic_weight * losses["sampled_genre"]
            chain = None
            if adversary is not None and step % config.sampled_critic_every == 0:   # adversarial_critic.py
                k = min(b, config.sampled_critic_windows)
                chain = sample_chain_prediction(model, sched, music[:k], genre_table, config.sampled_critic_steps,
                                                chain_stream)
                losses["adversarial"] = adversary.generator_loss(*chain)
                total = total + config.adversarial_weight * losses["adversarial"]
            opt.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            scheduler.step()
            if chain is not None:                              # then the critic learns from the same samples
                losses.update(adversary.update(x0, batch["genre"], chain[0]))
            step += 1
            seen += b
            for k in losses:
                running[k] = running.get(k, 0.0) + losses[k].item()
                counts[k] = counts.get(k, 0) + 1          # the sampled-critic loss is not computed every step
            bar.update(1)
            if (step % config.eval_every == 0 or step == config.steps) and evaluate():
                save_checkpoint()
            if config.snapshot_every and step % config.snapshot_every == 0:
                save_snapshot(out, step, model.state_dict())
            if step >= config.steps or time.perf_counter() - start >= config.minutes * 60:
                break
    bar.close()
    if not history or history[-1]["step"] != step:                 # stopped by the budget between evaluations
        evaluate()
    save_checkpoint()
    return {"best_step": best[1], "best_val_simple": best[0], "steps": step, "windows": seen,
            "seconds": round(time.perf_counter() - start, 1), "history": history}


def _validation_batch(store: WindowStore, normalizer, genres: list[str], genre_table: torch.Tensor,
                      config: TrainConfig) -> dict[str, torch.Tensor]:
    n = store.num_windows("val")
    if n == 0:
        raise DanceSearchError("the catalog's val split has no windows: the generator selects its checkpoint on it")
    rng = np.random.default_rng(config.seed)
    idx = rng.choice(n, size=min(n, config.val_windows), replace=False)
    wins = [store.window("val", int(i)) for i in idx]
    gen = torch.Generator().manual_seed(config.seed + 1)
    x0 = torch.as_tensor(np.stack([normalizer.normalise(w.motion) for w in wins]), dtype=torch.float32)
    return {"x0": x0, "music": torch.as_tensor(np.stack([w.music for w in wins])),
            "genre_emb": genre_table[torch.tensor([genres.index(w.genre) for w in wins])],
            "t": torch.randint(0, DDIMScheduler().num_train_timesteps, (len(wins),), generator=gen),
            "noise": torch.randn(x0.shape, generator=gen)}


@torch.no_grad()
def _val_loss(model: GCDanceDenoiser, val: dict[str, torch.Tensor]) -> float:
    model.eval()
    sched = DDIMScheduler()
    xt = sched.add_noise(val["x0"], val["noise"], val["t"])
    total, n = 0.0, len(xt)
    for i in range(0, n, 64):
        sl = slice(i, i + 64)
        pred = model(xt[sl], val["t"][sl], val["music"][sl], val["genre_emb"][sl])
        total += float(((pred - val["x0"][sl]) ** 2).mean()) * len(xt[sl])
    return total / n
