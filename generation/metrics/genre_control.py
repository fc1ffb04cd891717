"""Genre control: does a generated window look like the genre that was asked for? (GCDance's "control" test)

A motion genre classifier (multinomial logistic regression on per-window motion features: the project's
kinetic, geometric and hand features and the mean / spread of root-relative joint positions) is trained on
real training windows and its own accuracy measured on real test windows; it then labels generated windows.
With the music held fixed and only the requested genre changed, the share labelled with the requested genre
is the control rate (chance: 1 / number of genres).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from encoders.errors import InputError

from .protocols import get_protocol
from .sample import DanceSample


DESCRIPTOR_GROUPS = ("kinetic", "geometric", "hand", "pos_mean", "pos_std")
"""The descriptor's parts, in order: the protocol's kinetic, geometric and hand features, then the mean and
the spread over time of the root-relative joint positions (posture and its range)."""

WITHOUT_POSTURE = ("kinetic", "geometric", "hand")
"""The groups of a second control judge that does not read posture statistics: a generator trained against a
posture critic (``generation.diffusion.posture_critic``) is also judged by it, so its control rate is not
only the posture critic's verdict repeated."""


def descriptor_parts(sample: DanceSample) -> dict[str, np.ndarray]:
    """The descriptor of one window by group (``DESCRIPTOR_GROUPS``), so a verdict can be explained by part."""
    proto = get_protocol("dancesearch")
    f = proto.features(sample, hands=True)
    pos = sample.positions - sample.positions[:, :1]                 # root-relative
    return {"kinetic": f["kinetic"], "geometric": f["geometric"], "hand": f["hand"],
            "pos_mean": pos.mean(0).ravel(), "pos_std": pos.std(0).ravel()}


def motion_descriptor(sample: DanceSample, groups: Sequence[str] = DESCRIPTOR_GROUPS,
                      parts: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """One window -> a fixed-length vector describing its motion (energy, geometric tests, posture); ``parts``:
    its :func:`descriptor_parts` when the caller already has them (several judges of one window)."""
    parts = descriptor_parts(sample) if parts is None else parts
    return np.concatenate([parts[g] for g in groups])


def descriptor_slices(sample: DanceSample, groups: Sequence[str] = DESCRIPTOR_GROUPS) -> dict[str, slice]:
    """Where each group sits in ``motion_descriptor(sample, groups)`` (the sizes depend on the skeleton)."""
    parts = descriptor_parts(sample)
    out, start = {}, 0
    for g in groups:
        out[g] = slice(start, start + len(parts[g]))
        start += len(parts[g])
    return out


def _check_groups(groups: Sequence[str]) -> tuple[str, ...]:
    unknown = [g for g in groups if g not in DESCRIPTOR_GROUPS]
    if unknown or not groups:
        raise InputError(None, "unknown or no descriptor groups", field="groups",
                         expected=", ".join(DESCRIPTOR_GROUPS), got=", ".join(unknown) or "none")
    return tuple(groups)


@dataclass
class MotionGenreClassifier:
    genres: list[str]
    mean: np.ndarray
    std: np.ndarray
    weight: torch.Tensor
    bias: torch.Tensor
    groups: tuple[str, ...] = DESCRIPTOR_GROUPS
    """The descriptor groups it reads (all by default; ``WITHOUT_POSTURE`` for the second judge)."""

    @classmethod
    def fit(cls, samples: Sequence[DanceSample], labels: Sequence[str], epochs: int = 400, l2: float = 1e-3,
            seed: int = 0, groups: Sequence[str] = DESCRIPTOR_GROUPS) -> "MotionGenreClassifier":
        groups = _check_groups(groups)
        genres = sorted(set(labels))
        x = np.stack([motion_descriptor(s, groups) for s in samples])
        mean, std = x.mean(0), x.std(0) + 1e-6
        xt = torch.as_tensor((x - mean) / std, dtype=torch.float32)
        y = torch.tensor([genres.index(g) for g in labels])
        torch.manual_seed(seed)
        w = torch.zeros(x.shape[1], len(genres), requires_grad=True)
        b = torch.zeros(len(genres), requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=0.01)
        for _ in range(epochs):
            loss = torch.nn.functional.cross_entropy(xt @ w + b, y) + l2 * (w ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return cls(genres, mean, std, w.detach(), b.detach(), groups)

    def predict(self, samples: Sequence[DanceSample],
                parts: Sequence[Mapping[str, np.ndarray]] | None = None) -> list[str]:
        """Labels of ``samples`` (``parts``: their descriptor parts, if already computed)."""
        return self.labels(self.standardised(samples, parts))

    def labels(self, z: np.ndarray) -> list[str]:
        """Labels of standardised descriptors (N, D) (:meth:`standardised`)."""
        logits = torch.as_tensor(z, dtype=torch.float32) @ self.weight + self.bias
        return [self.genres[i] for i in logits.argmax(1).tolist()]

    def standardised(self, samples: Sequence[DanceSample],
                     parts: Sequence[Mapping[str, np.ndarray]] | None = None) -> np.ndarray:
        """(N, D) descriptors in the classifier's standardised units (what its weights multiply)."""
        parts = [None] * len(samples) if parts is None else parts
        return (np.stack([motion_descriptor(s, self.groups, p) for s, p in zip(samples, parts)]) - self.mean) / self.std

    def _genre(self, name: str) -> int:
        if name not in self.genres:
            raise InputError(None, "genre unknown to the motion genre classifier", field="genre",
                             expected=", ".join(self.genres), got=name)
        return self.genres.index(name)

    def logit_gap_by_group(self, sample: DanceSample, wanted: str, other: str) -> dict[str, float]:
        """logit(wanted) - logit(other) for one window, split into each descriptor group's share (the bias
        difference, the rest of the gap, is left out): which parts of the motion argue for ``other``."""
        return self.logit_gap_of(self.standardised([sample])[0], descriptor_slices(sample, self.groups), wanted, other)

    def logit_gap_of(self, z: np.ndarray, slices: Mapping[str, slice], wanted: str, other: str) -> dict[str, float]:
        """:meth:`logit_gap_by_group` of one standardised descriptor ``z`` whose groups sit at ``slices``."""
        w = (self.weight[:, self._genre(wanted)] - self.weight[:, self._genre(other)]).numpy()
        return {g: float(z[sl] @ w[sl]) for g, sl in slices.items()}

    def accuracy(self, samples: Sequence[DanceSample], labels: Sequence[str]) -> float:
        return float(np.mean([p == g for p, g in zip(self.predict(samples), labels)]))


def control_hits(pipe, classifier: MotionGenreClassifier, music: np.ndarray, seed: int = 1, steps: int = 20,
                 guidance: float = 2.0, genre_guidance: float | None = None, stochastic: bool = False,
                 postprocess: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """GCDance's control test item by item: (G, M) hits, row g = genre ``pipe.genres[g]`` requested for each of the
    music windows ``music`` (M, W, 35) held fixed (``pipe``: a ``DancePipeline``, ``genres``, ``sample_windows``);
    a hit is a generated window ``classifier`` labels with the requested genre. Kept per item so two generators
    can be paired item by item (``bench/ablate_generator.py``)."""
    return control_hits_by(pipe, {"control": classifier}, music, seed, steps, guidance, genre_guidance,
                           stochastic, postprocess)["control"]


def control_hits_by(pipe, classifiers: Mapping[str, MotionGenreClassifier], music: np.ndarray, seed: int = 1,
                    steps: int = 20, guidance: float = 2.0, genre_guidance: float | None = None,
                    stochastic: bool = False, postprocess: Callable[[np.ndarray], np.ndarray] | None = None
                    ) -> dict[str, np.ndarray]:
    """:func:`control_hits` for several judges of the same generated windows (sampled once): name -> (G, M).
    ``postprocess`` maps each window's (T, 319) features before decoding, as the pipeline's output would be."""
    from ..representation.codec import decode

    rows: dict[str, list[list[bool]]] = {name: [] for name in classifiers}
    for g in pipe.genres:
        x = pipe.sample_windows(music, [g] * len(music), seed=seed, steps=steps, guidance=guidance,
                                genre_guidance=genre_guidance, stochastic=stochastic)
        recs = [decode(f if postprocess is None else postprocess(f)) for f in x]
        samples = [DanceSample(f"{g}-{i}", r.positions, 30.0, r.joint_names) for i, r in enumerate(recs)]
        parts = [descriptor_parts(s) for s in samples]          # once per window, however many judges read it
        for name, clf in classifiers.items():
            rows[name].append([p == g for p in clf.predict(samples, parts)])
    return {name: np.asarray(r, dtype=np.float64) for name, r in rows.items()}


def control_rate(pipe, classifier: MotionGenreClassifier, music: np.ndarray, seed: int = 1, steps: int = 20,
                 guidance: float = 2.0, genre_guidance: float | None = None) -> tuple[float, dict[str, float]]:
    """The control test's share of hits (``control_hits``), overall and per genre."""
    hits = control_hits(pipe, classifier, music, seed, steps, guidance, genre_guidance)
    return float(hits.mean()), {g: float(row.mean()) for g, row in zip(pipe.genres, hits)}
