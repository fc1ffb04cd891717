"""A frozen motion genre critic whose cross-entropy on the denoiser's clean-motion prediction is a training loss.

Why: classifier-free guidance and genre-swapped music (``music_swap.py``) teach the denoiser to *read* the
genre prompt, but nothing in losses eq. 5-8 says how much the genre must show: on the demo corpus the prompt
decided the style of only a third of windows (docs/results/generation.md). Here a small network learns, before
the denoiser trains, to tell the 18 genres apart from real normalised training windows; during denoiser
training it is frozen and its cross-entropy on the predicted x0 (for the requested genre) is added to the
loss, weighted by the step's signal share a_t (at pure noise x0 is the genre's blurry mean and its class is
weakly defined). This is classifier guidance moved from sampling into training, so sampling costs nothing more.

The feature critic (``kind="features"``, v3's) is deliberately a different model from the evaluation's genre
classifier (``generation.metrics.genre_control``: logistic regression on hand-made kinetic / geometric /
posture features): a temporal convolution on the raw normalised 319-d features, so a generator that only
fooled the critic would not, by that alone, pass the control test. The posture critic (``posture_critic.py``,
``kind="posture"`` or ``"both"``) reads posture statistics, as part of that classifier does; runs trained
against it are also judged by a classifier without the posture groups.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from encoders.errors import DanceSearchError

from ..representation.normalizer import Normalizer
from ..windows import WindowDataset, WindowStore
from .posture_critic import PostureCritic, statistics_scale


@dataclass(frozen=True)
class CriticConfig:
    """The critic's size and fit. 12 epochs over the demo catalog's 2,592 train windows took 114 s on 2 idle
    cores (out of the generator's budget) and reached 99.5% train / 84.6% val accuracy when v3 was trained;
    with the fit's own random stream (the fork_rng mend) the same settings give 96.3% / 88.0%
    (``bench/results/control_gap_v3.json``). Other settings untried."""
    width: int = 128
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    feature_noise: float = 0.2
    """Gaussian noise (in normalised units) added to training windows, so the critic also judges the slightly
    blurred clean-motion predictions of a denoiser, not only crisp real windows."""
    seed: int = 0
    posture_epochs: int = 40
    posture_noise: float = 0.05
    """Epochs and input noise of the posture critic (``kind`` posture / both). Its statistics average over the
    window, so it learns more slowly than the feature critic and is hurt by that critic's input noise (informal
    trials on the demo catalog favoured 40 epochs at 0.05 over 12 epochs or noise 0.2); fitted inside v5's run
    it reached 86.7% train / 63.9% val accuracy (``bench/results/generator_v5_training.json``)."""
    kind: str = "features"
    """``features``: :class:`GenreCritic` on the normalised features (v3); ``posture``: ``posture_critic.
    PostureCritic`` on FK posture statistics; ``both``: the two fitted separately, judging together
    (:class:`CriticEnsemble`)."""

    def __post_init__(self) -> None:
        if self.kind not in CRITIC_KINDS:
            raise DanceSearchError(f"unknown genre critic kind {self.kind!r}: one of {', '.join(CRITIC_KINDS)}")


CRITIC_KINDS = ("features", "posture", "both")


class GenreCritic(nn.Module):
    """(B, T, F) normalised motion -> (B, G) genre logits: two temporal convolutions, mean and spread pooling."""

    def __init__(self, features: int, genres: int, width: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(features, width, 5, padding=2), nn.GELU(),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.GELU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(2 * width, genres))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        h = self.net(motion.transpose(1, 2))                          # (B, W, T / 4)
        return self.head(torch.cat([h.mean(-1), h.std(-1)], dim=-1))


class CriticEnsemble(nn.Module):
    """Several fitted critics judging together: the sum of their log-probabilities (a product of experts), so
    a prediction convinces the ensemble only by convincing each member."""

    def __init__(self, critics: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(critics)

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        return sum(nn.functional.log_softmax(c(motion), dim=-1) for c in self.members)


def critic_accuracy(critic: nn.Module, data: WindowDataset, batch_size: int = 256) -> float:
    critic.eval()
    hits = 0
    with torch.no_grad():      # its own generator: iterating a loader draws a seed from it, not the global stream
        for batch in torch.utils.data.DataLoader(data, batch_size=batch_size, generator=torch.Generator()):
            hits += int((critic(batch["motion"]).argmax(1) == batch["genre"]).sum())
    return hits / max(1, len(data))


def fit_genre_critic(store: WindowStore, normalizer: Normalizer, config: CriticConfig = CriticConfig(),
                     progress: bool = True, deadline: float | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train the critic on ``store``'s train windows; return it frozen, with its train / val accuracy.

    The fit draws from its own seeded generator and leaves torch's global random state as it found it, so the
    denoiser's training stream still depends on ``TrainConfig.seed`` alone. ``deadline`` (a
    ``time.perf_counter()`` value) ends the fit after the epoch that passes it, so on a slow or busy machine the
    critic cannot eat the denoiser's time budget; a fit cut short depends on the clock, not only the seed. The
    report's ``members`` give each fitted critic's planned ``epochs`` and ``epochs_run`` (and, for ``both``, its
    own accuracy); ``epochs_run`` is their total and ``cut_short`` says whether any stopped early."""
    start = time.perf_counter()
    train = WindowDataset(store, "train", normalizer)
    if len(train) < 2:
        raise DanceSearchError(f"the genre critic needs at least 2 train windows, the cache has {len(train)}")
    kinds = ("features", "posture") if config.kind == "both" else (config.kind,)
    members, planned, ran = [], {}, {}
    for kind in kinds:
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            if kind == "features":
                member = GenreCritic(train[0]["motion"].shape[-1], len(store.genres), config.width)
            else:
                member = PostureCritic(normalizer, *statistics_scale(train, normalizer), len(store.genres),
                                       2 * config.width)
            planned[kind], noise = ((config.epochs, config.feature_noise) if kind == "features"
                                    else (config.posture_epochs, config.posture_noise))
            ran[kind] = fit_epochs(member, train, config, planned[kind], noise, progress, deadline,
                             desc=f"genre critic ({kind})")
        members.append(member)
    critic = members[0] if len(members) == 1 else CriticEnsemble(members)
    critic.eval()
    for p in critic.parameters():
        p.requires_grad_(False)
    val = WindowDataset(store, "val", normalizer) if store.num_windows("val") else None
    report = {**accuracy_report(critic, train, val),
              "seconds": round(time.perf_counter() - start, 1), "epochs_run": sum(ran.values()),
              "cut_short": any(ran[k] < planned[k] for k in kinds), "config": asdict(config),
              "members": {k: {"epochs": planned[k], "epochs_run": ran[k]} for k in kinds}}
    if len(members) > 1:
        for kind, m in zip(kinds, members):
            report["members"][kind].update(accuracy_report(m, train, val))
    return critic, report


def accuracy_report(critic: nn.Module, train: WindowDataset, val: WindowDataset | None) -> dict[str, float | None]:
    """``train_accuracy`` / ``val_accuracy`` (None without val windows) of a fitted critic, rounded for the run's
    record."""
    return {"train_accuracy": round(critic_accuracy(critic, train), 4),
            "val_accuracy": None if val is None else round(critic_accuracy(critic, val), 4)}


def fit_epochs(critic: nn.Module, train: WindowDataset, config: CriticConfig, epochs: int, noise: float,
               progress: bool, deadline: float | None, desc: str) -> int:
    """The fit's epochs on ``train`` (inside the caller's forked, seeded random stream); returns epochs run."""
    opt = torch.optim.AdamW(critic.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loader = torch.utils.data.DataLoader(train, batch_size=min(config.batch_size, len(train)), shuffle=True,
                                         drop_last=True, generator=torch.Generator().manual_seed(config.seed))
    epochs_run = 0
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress):
        if deadline is not None and epochs_run > 0 and time.perf_counter() >= deadline:
            break
        epochs_run += 1
        critic.train()
        for batch in loader:
            x = batch["motion"] + noise * torch.randn_like(batch["motion"])
            loss = nn.functional.cross_entropy(critic(x), batch["genre"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs_run


def critic_loss(critic: nn.Module, x0_pred: torch.Tensor, genre: torch.Tensor, signal: torch.Tensor,
                keep: torch.Tensor) -> torch.Tensor:
    """Mean over windows whose genre was given (``keep``) of a_t * CE(critic(x0_pred), genre); 0 if none."""
    ce = nn.functional.cross_entropy(critic(x0_pred), genre, reduction="none")
    weight = signal * keep.to(ce.dtype)
    return (ce * weight).sum() / keep.sum().clamp(min=1)


__all__ = ["CRITIC_KINDS", "CriticConfig", "CriticEnsemble", "GenreCritic", "accuracy_report", "critic_accuracy",
           "critic_loss", "fit_epochs", "fit_genre_critic"]
