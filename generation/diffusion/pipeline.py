"""``DancePipeline``: music (+ genre) -> a dance of any length, from a trained run directory.

Borrowed interface: diffusers' pipelines (``from_pretrained(dir)``, ``__call__``). Long dances follow
GCDance III-C / EDGE: 4-s windows every 2 s sampled as one batch; after every DDIM step the predicted
clean overlap of windows i and i+1 (window i's second half, re-expressed in window i+1's canonical frame;
every window is generated in its own frame: first root at the origin facing +z) becomes one blend of the two,
window i's share decaying along a smootherstep ramp (``chain_ramp``; ``self.chain = "replace"`` is EDGE's hard
copy of window i's half, ``"linear"`` a linear ramp). The windows are then placed in the world by chaining
those frames and cross-faded linearly over each overlap. Guidance, seeds and step counts are the caller's.

``stochastic=True`` (POPDG 4.1) samples with noise between the DDIM steps instead of DDIM's deterministic
path: with the model's learned variance when it has one (``learned_variance``, iDDPM on the respaced
schedule), else with the posterior variance beta~ (DDIM eta = 1). Off (the default) is the DDIM sampler
every run used before, unchanged; the noise, like x_T, comes from ``seed``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from encoders.errors import InputError
from encoders.motion.record import MotionRecord

from ..representation.canonical import CanonicalFrame, yaw_matrix
from ..representation.codec import canonicalise_features, decode, encode, place_features
from ..representation.foot_lock import lock_planted_feet_record
from ..representation.layout import FPS, LAYOUT
from .denoiser import GCDanceDenoiser
from .editing import EditSpec
from .run_dir import load_run, weights_path
from .sampling import assemble_windows, ddim_sample
from .schedule import DDIMScheduler


CHAIN_RAMPS = ("smootherstep", "linear", "replace")


def chain_ramp(kind: str, overlap: int) -> np.ndarray:
    """Weight of the later window over an overlap of ``overlap`` frames (0 = all the earlier window's motion).

    ``replace``: all zeros, window i+1's first half is window i's second half (EDGE's hard constraint);
    ``linear``: k / O; ``smootherstep``: 6u^5 - 15u^4 + 10u^3, whose first and second derivatives vanish at
    both ends, so the blend adds neither a velocity kink nor an acceleration step where the overlap begins
    and ends.
    """
    u = np.arange(overlap, dtype=np.float64) / overlap
    if kind == "replace":
        return np.zeros_like(u)
    if kind == "linear":
        return u
    if kind == "smootherstep":
        return u ** 3 * (u * (6.0 * u - 15.0) + 10.0)
    raise ValueError(f"unknown chain ramp {kind!r}: one of {', '.join(CHAIN_RAMPS)}")


@dataclass
class Generated:
    record: MotionRecord
    genre: str
    seconds: float
    windows: int
    timing: dict[str, float] = field(default_factory=dict)


class DancePipeline:
    def __init__(self, model: GCDanceDenoiser, normalizer, genres: list[str], genre_embeddings: np.ndarray,
                 run_config: dict[str, Any] | None = None, model_id: str = "") -> None:
        self.model = model.eval()
        self.normalizer = normalizer
        self.genres = list(genres)
        self.genre_embeddings = torch.as_tensor(genre_embeddings, dtype=torch.float32)
        self.run_config = run_config or {}
        self.model_id = model_id
        self.scheduler = DDIMScheduler()
        self.chain = "smootherstep"
        """How neighbouring windows are made to agree on their overlaps (:func:`chain_ramp`); an attribute so
        benchmarks can compare the choices on the same model."""

    @classmethod
    def from_pretrained(cls, run_dir: str | Path, snapshot: int | None = None) -> "DancePipeline":
        """The run's selected checkpoint, or with ``snapshot`` the weights it kept at that training step."""
        import hashlib

        model, normalizer, genres, emb, raw = load_run(run_dir, snapshot=snapshot)
        digest = hashlib.sha256(weights_path(run_dir, snapshot).read_bytes()).hexdigest()[:16]
        return cls(model, normalizer, genres, emb, raw, f"gcdance-{digest}")

    @property
    def window_frames(self) -> int:
        return self.model.config.window_frames

    def genre_index(self, genre: str) -> int:
        key = genre.strip().lower().replace("-", "").replace(" ", "")
        for i, g in enumerate(self.genres):
            if g.replace("-", "").replace(" ", "") == key:
                return i
        raise InputError(None, f"unknown genre {genre!r}", field="genre", expected=f"one of {', '.join(self.genres)}",
                         got=genre)

    def __call__(self, music: np.ndarray, genre: str, seed: int = 0, steps: int = 20, guidance: float = 2.0,
                 genre_guidance: float | None = None, stochastic: bool = False, foot_lock: bool = False) -> Generated:
        """music (T, 35) features at 30 fps (``DenoiserConfig.music_dim``) -> a dance of T frames in ``genre``.
        ``foot_lock`` holds the feet the model marks as planted in place (``representation.foot_lock``, on the
        blended dance): far less foot sliding, at a cost in kinetic realism and in genres whose footwork slides
        (docs/results/generation.md)."""
        music = np.asarray(music, dtype=np.float32)
        w, d = self.window_frames, self.model.config.music_dim
        if music.ndim != 2 or music.shape[1] != d:
            raise InputError(None, "bad music features", field="music", expected=f"(T, {d})", got=str(music.shape))
        if len(music) < w:
            raise InputError(None, "music shorter than one window", field="music",
                             expected=f">= {w} frames ({w / FPS:g} s)", got=f"{len(music)} frames")
        t0 = time.perf_counter()
        hop = w // 2
        n = max(1, math.ceil((len(music) - w) / hop) + 1)
        total = (n - 1) * hop + w
        padded = np.concatenate([music, np.repeat(music[-1:], total - len(music), axis=0)]) if total > len(music) else music
        music_w = torch.as_tensor(np.stack([padded[i * hop:i * hop + w] for i in range(n)]))
        g = self.genre_embeddings[self.genre_index(genre)].expand(n, -1)
        x0 = self._sample(music_w, g, seed, steps, guidance, hop, genre_guidance, stochastic)
        t1 = time.perf_counter()
        record = self._assemble(x0, hop, foot_lock)
        record = record.slice(0, len(music))
        return Generated(record, self.genres[self.genre_index(genre)], len(music) / FPS, n,
                         {"sample_s": round(t1 - t0, 3), "assemble_s": round(time.perf_counter() - t1, 3)})

    @torch.no_grad()
    def edit(self, record: MotionRecord, music: np.ndarray, genre: str, spec: EditSpec, seed: int = 0,
             steps: int = 20, guidance: float = 2.0, genre_guidance: float | None = None,
             stochastic: bool = False) -> Generated:
        """Inpainting (eq. 15) on one window: keep what ``spec`` names of ``record``, generate the rest.

        ``record`` (at most one window, 4 s; shorter means "continue it") is expressed in its own canonical
        frame, the kept values are imposed after every DDIM step, and the result is put back where the
        record stands in the world, so kept frames and joints come back as they were (to float precision).
        """
        w, d = self.window_frames, self.model.config.music_dim
        music = np.asarray(music, dtype=np.float32)
        if music.ndim != 2 or music.shape[1] != d or len(music) < w:
            raise InputError(None, "music must cover one window", field="music",
                             expected=f"(>= {w}, {d}) features ({w / FPS:g} s)", got=str(music.shape))
        if len(record.trans) > w:
            raise InputError(None, "editing works on one window", field="motion",
                             expected=f"<= {w} frames ({w / FPS:g} s)", got=f"{len(record.trans)} frames")
        t0 = time.perf_counter()
        feats, frame = encode(record, name="motion to edit")
        n = len(feats)
        known = np.zeros((w, LAYOUT.dim), dtype=np.float32)
        known[:n] = feats
        mask = spec.mask(w, n)
        known_n = torch.as_tensor(self.normalizer.normalise(known), dtype=torch.float32)[None]
        g = self.genre_embeddings[self.genre_index(genre)][None]
        x = ddim_sample(self.model, self.scheduler, torch.as_tensor(music[None, :w]), g, steps=steps,
                        guidance=guidance, generator=torch.Generator().manual_seed(int(seed)), known=known_n,
                        mask=torch.as_tensor(mask[None]), genre_guidance=genre_guidance,
                        variance=self.variance(stochastic))
        out = self.normalizer.denormalise(x[0].numpy())
        out[mask] = known[mask]                  # exact, not through float32 normalisation round trips
        t1 = time.perf_counter()
        return Generated(decode(out, frame), self.genres[self.genre_index(genre)], w / FPS, 1,
                         {"sample_s": round(t1 - t0, 3), "assemble_s": 0.0})

    @torch.no_grad()
    def sample_windows(self, music: np.ndarray, genres: list[str], seed: int = 0, steps: int = 20,
                       guidance: float = 2.0, genre_guidance: float | None = None,
                       stochastic: bool = False,
                       on_step: Callable[[int, torch.Tensor], None] | None = None) -> np.ndarray:
        """Independent 4-s windows (N, W, 319), de-normalised, each in its canonical frame (for evaluation).

        ``on_step(i, x0)``, when given, sees the guided clean-motion prediction (normalised) of every sampling
        step i, as diffusers' step callbacks do: for probes of how a sample forms (``bench/probe_control_gap.py``)."""
        idx = torch.tensor([self.genre_index(g) for g in genres])
        return self._sample(torch.as_tensor(np.asarray(music, dtype=np.float32)), self.genre_embeddings[idx], seed,
                            steps, guidance, hop=None, genre_guidance=genre_guidance, stochastic=stochastic,
                            on_step=on_step)

    def variance(self, stochastic: bool) -> str:
        """The sampler ``stochastic`` selects: ``"ddim"`` (False), else ``"learned"`` for a learned-variance
        model and ``"fixed"`` (beta~) for any other (``sampling.VARIANCES``)."""
        if not stochastic:
            return "ddim"
        return "learned" if self.model.config.learned_variance else "fixed"

    @torch.no_grad()
    def _sample(self, music: torch.Tensor, genre: torch.Tensor, seed: int, steps: int, guidance: float,
                hop: int | None, genre_guidance: float | None = None, stochastic: bool = False,
                on_step: Callable[[int, torch.Tensor], None] | None = None) -> np.ndarray:
        n = music.shape[0]

        def at_step(i: int, x0: torch.Tensor) -> torch.Tensor:
            if on_step is not None:
                on_step(i, x0)
            return self._chain(x0, hop) if n > 1 and hop is not None else x0

        x = ddim_sample(self.model, self.scheduler, music.float(), genre, steps=steps, guidance=guidance,
                        generator=torch.Generator().manual_seed(int(seed)), genre_guidance=genre_guidance,
                        variance=self.variance(stochastic), on_x0=at_step)
        return self.normalizer.denormalise(x.numpy())

    def _chain(self, x0: torch.Tensor, hop: int) -> torch.Tensor:
        """Make neighbouring windows agree on their overlap with a blend (GCDance III-C's decaying blend).

        Over the overlap, frame k (k = 0 .. O-1) becomes (1 - r) * window i's own continuation + r * window
        i+1's own start, r = smootherstep(k / O), in window i+1's canonical frame (which window i's tail
        defines); window i's tail is set to the same frames moved back into window i's frame. The overlap
        thus starts as window i's motion and ends as window i+1's, so neither window has a cut inside it
        (hard-replacing window i+1's first half left a jump at its middle that the model had to repair), and
        smootherstep has zero velocity and acceleration at both ends, so the blend itself adds no jerk there
        (a linear r kinks the velocity). Measured with ``bench/bench_seams.py`` (docs/results/generation.md).
        """
        feats = self.normalizer.denormalise(x0.numpy().astype(np.float64))
        overlap = feats.shape[1] - hop
        ramp = chain_ramp(self.chain, overlap)[:, None]
        for i in range(1, len(feats)):
            tail, sub = canonicalise_features(feats[i - 1, hop:])
            blended = (1.0 - ramp) * tail + ramp * feats[i, :overlap]
            feats[i, :overlap] = blended
            feats[i - 1, hop:] = place_features(blended, sub)
        return torch.as_tensor(self.normalizer.normalise(feats), dtype=x0.dtype)

    def _assemble(self, windows: np.ndarray, hop: int, foot_lock: bool = False) -> MotionRecord:
        """Place each canonical window in the world (chained frames), cross-fade the overlaps, then (``foot_lock``)
        hold the planted feet."""
        joined = assemble_windows(torch.as_tensor(np.stack(self.world_windows(windows, hop)))).numpy()
        record = decode(joined)
        return lock_planted_feet_record(record) if foot_lock else record

    def world_windows(self, windows: np.ndarray, hop: int) -> list[np.ndarray]:
        """(N, W, 319) canonical windows (de-normalised) -> each in world coordinates (root and rotations)."""
        frames = [CanonicalFrame.identity()]
        for i in range(1, len(windows)):
            _, sub = canonicalise_features(windows[i - 1, hop:])
            prev = frames[-1]
            origin = yaw_matrix(prev.yaw) @ np.asarray(sub.origin) + np.asarray(prev.origin)
            frames.append(CanonicalFrame(prev.yaw + sub.yaw, (float(origin[0]), 0.0, float(origin[2]))))
        world = []
        for win, frame in zip(windows, frames):
            rec = decode(win, frame)
            f = np.array(win, dtype=np.float32, copy=True)
            f[:, LAYOUT.root] = rec.trans
            f[:, LAYOUT.rotations] = rec.rotations_6d.reshape(len(f), -1)
            world.append(f)
        return world
