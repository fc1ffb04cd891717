"""Diagnosis: where does a generator lose the requested genre in the control test?

The control test (music fixed, genre changed) labels generated windows with a motion genre classifier on
hand-made features (``generation.metrics.genre_control``). This probe follows the same items through DDIM and
asks, at a few sampling steps, what the training-time genre critic (``generation.diffusion.genre_critic``,
refitted here with its default seed, of the kind the run was trained with) sees in the predicted clean motion,
and at the end what the control classifier sees. It separates three failures:

- the critic names the *music's* genre: the music, not the prompt, decides the dance;
- the critic names the requested genre but the classifier does not: the dance carries the genre in a form the
  critic reads and real-data features do not (the gap a stronger critic loss cannot close);
- neither: the prompt is not followed at all.

For every window the classifier labels with another genre it also splits logit(requested) - logit(label) by
descriptor group (``MotionGenreClassifier.logit_gap_by_group``: kinetic, geometric, hand, mean posture,
posture spread), and per genre it compares the generated and the real test windows' mean standardised
descriptor of each group: which part of the motion carries the miss. Two more judges read the same windows: a
classifier without the posture groups, and, for a run trained against another critic (posture / both), the
feature critic alone, so a run is not judged only by what it was trained against.

    python bench/probe_control_gap.py --home .dancesearch --run models/generator --music 6 --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from encoders.atomic_io import atomic_write_json  # noqa: E402
from generation.diffusion.genre_critic import CriticConfig, fit_genre_critic  # noqa: E402
from generation.diffusion.pipeline import DancePipeline  # noqa: E402
from generation.metrics.catalog_source import window_samples, window_store  # noqa: E402
from generation.metrics.genre_control import (DESCRIPTOR_GROUPS, WITHOUT_POSTURE, MotionGenreClassifier,  # noqa: E402
                                              descriptor_parts, descriptor_slices)
from generation.metrics.sample import DanceSample  # noqa: E402
from generation.representation.codec import decode  # noqa: E402

CHECKPOINTS = (0, 2, 5, 10)
"""DDIM step indices (of ``--steps``) at which the critic reads the predicted x0; the last step is always read."""


def trace_genre(pipe: DancePipeline, critic, music: np.ndarray, genre: str, steps: int, guidance: float,
                seed: int, last_x0: list[torch.Tensor] | None = None) -> tuple[dict[int, list[int]], np.ndarray]:
    """Critic labels of the predicted x0 at each checkpoint step, and the final de-normalised windows (the last
    step's normalised prediction is appended to ``last_x0`` when given)."""
    labels: dict[int, list[int]] = {}

    def read(i: int, x0: torch.Tensor) -> None:
        if i in CHECKPOINTS or i == steps - 1:
            labels[i] = critic(x0.float()).argmax(1).tolist()
        if i == steps - 1 and last_x0 is not None:
            last_x0.append(x0.float())

    windows = pipe.sample_windows(music, [genre] * len(music), seed=seed, steps=steps, guidance=guidance, on_step=read)
    return labels, windows


def genre_profiles(clf: MotionGenreClassifier, samples: list[DanceSample], genre_of) -> dict[str, np.ndarray]:
    """Per genre, the mean standardised descriptor of its windows (D,)."""
    z = clf.standardised(samples)
    return {g: z[[genre_of(s) == g for s in samples]].mean(0) for g in sorted({genre_of(s) for s in samples})}


def group_comparison(generated: np.ndarray, real: np.ndarray | None, slices: dict[str, slice]) -> dict[str, Any]:
    """Per descriptor group: the mean standardised value of the generated and the real profile (signed: for the
    posture spread, below the real value = less range of motion) and the RMS difference between them over the
    group's dimensions (sign-free: for the mean posture, where signed values cancel)."""
    out: dict[str, Any] = {}
    for k, sl in slices.items():
        out[k] = {"generated": round(float(generated[sl].mean()), 3),
                  "real_test": None if real is None else round(float(real[sl].mean()), 3),
                  "rms_difference": None if real is None else
                  round(float(np.sqrt(np.mean((generated[sl] - real[sl]) ** 2))), 3)}
    return out


def probe(home: str, run: str, music_windows: int, steps: int, guidance: float, seed: int) -> dict:
    start = time.perf_counter()
    store = window_store(home)
    pipe = DancePipeline.from_pretrained(run)
    trained_with = json.loads((Path(run) / "config.json").read_text()).get("train", {})
    critic_config = CriticConfig(kind=trained_with.get("critic_kind", "features"),        # the run's own critic
                                 epochs=trained_with.get("critic_epochs", CriticConfig.epochs),
                                 posture_epochs=trained_with.get("posture_critic_epochs", CriticConfig.posture_epochs))
    critic, critic_report = fit_genre_critic(store, pipe.normalizer, critic_config, progress=False)
    independent = None                 # a run trained against another critic is also read by the feature critic
    if critic_config.kind != "features":
        independent, _ = fit_genre_critic(store, pipe.normalizer, CriticConfig(epochs=critic_config.epochs),
                                          progress=False)
    train = window_samples(store, "train")
    clf = MotionGenreClassifier.fit(train, [s.meta["genre"] for s in train])
    clf_no_posture = MotionGenreClassifier.fit(train, [s.meta["genre"] for s in train], groups=WITHOUT_POSTURE)
    test = window_samples(store, "test")               # the classifier's own accuracy per genre on real windows
    test_pred = clf.predict(test)
    real_accuracy = {g: float(np.mean([p == g for p, s in zip(test_pred, test) if s.meta["genre"] == g]))
                     for g in sorted({s.meta["genre"] for s in test})}
    n_test = store.num_windows("test")
    idx = list(range(0, n_test, 3))[::3][:music_windows]      # spread over the control test's music windows
    wins = [store.window("test", i) for i in idx]
    music = np.stack([w.music for w in wins]).astype(np.float32)
    music_genre = [pipe.genre_index(w.genre) for w in wins]
    genres = list(pipe.genres)
    critic_hits: dict[int, list[bool]] = {}
    critic_music: dict[int, list[bool]] = {}
    final_hits, gap, per_genre = [], [], {}
    group_gaps: dict[str, list[float]] = {k: [] for k in DESCRIPTOR_GROUPS}
    slices = descriptor_slices(test[0])
    real_profiles = genre_profiles(clf, test, lambda s: s.meta["genre"])
    no_posture_hits, independent_hits = [], []
    for g, name in enumerate(genres):
        final_x0: list[torch.Tensor] = []
        labels, windows = trace_genre(pipe, critic, music, name, steps, guidance, seed, final_x0)
        for i, lab in labels.items():
            critic_hits.setdefault(i, []).extend(lab_i == g for lab_i in lab)
            critic_music.setdefault(i, []).extend(lab_i == m for lab_i, m in zip(lab, music_genre))
        recs = [decode(w) for w in windows]
        samples = [DanceSample(f"{name}-{j}", r.positions, 30.0, r.joint_names) for j, r in enumerate(recs)]
        parts = [descriptor_parts(s) for s in samples]                 # once per window, for both judges
        z = clf.standardised(samples, parts)
        pred = clf.labels(z)
        for z_row, label in zip(z, pred):
            if label != name:
                for k, v in clf.logit_gap_of(z_row, slices, name, label).items():
                    group_gaps[k].append(v)
        generated_profile = z.mean(0)
        no_posture_hits += [p == name for p in clf_no_posture.predict(samples, parts)]
        if independent is not None:
            independent_hits += (independent(final_x0[0]).argmax(1) == g).tolist()
        last = labels[max(labels)]
        hits = [p == name for p in pred]
        final_hits += hits
        gap += [lab == g and not h for lab, h in zip(last, hits)]
        per_genre[name] = {"classifier": float(np.mean(hits)),
                           "critic_last_step": float(np.mean([lab == g for lab in last])),
                           "classifier_labels": pred,
                           "descriptor_z": group_comparison(generated_profile, real_profiles.get(name), slices)}
    return {"run": run, "home": home, "music_windows": idx, "steps": steps, "guidance": guidance, "seed": seed,
            "critic": critic_report,
            "critic_says_requested": {str(i): float(np.mean(v)) for i, v in sorted(critic_hits.items())},
            "critic_says_music_genre": {str(i): float(np.mean(v)) for i, v in sorted(critic_music.items())},
            "classifier_says_requested": float(np.mean(final_hits)),
            "classifier_without_posture_says_requested": float(np.mean(no_posture_hits)),
            "feature_critic_last_step_says_requested": (float(np.mean(independent_hits)) if independent is not None
                                                        else None),
            "critic_yes_classifier_no": float(np.mean(gap)), "per_genre": per_genre,
            "classifier_real_test_accuracy": real_accuracy,
            "misses_logit_gap_by_group": {k: round(float(np.mean(v)), 3) if v else None for k, v in group_gaps.items()},
            "items": len(final_hits), "seconds": round(time.perf_counter() - start, 1)}


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", required=True, help="workspace whose window cache holds the demo catalog")
    ap.add_argument("--run", required=True, help="generator run directory (e.g. models/generator)")
    ap.add_argument("--music", type=int, default=6, help="music windows held fixed (x every genre)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", metavar="FILE", help="write the result here as well")
    args = ap.parse_args()
    if args.music < 1 or args.steps < 1:
        ap.error("--music and --steps must be >= 1")
    torch.set_num_threads(max(1, args.threads))
    out = probe(args.home, args.run, args.music, args.steps, args.guidance, args.seed)
    print(f"{out['items']} items ({len(out['music_windows'])} music x {len(out['per_genre'])} genres), "
          f"{out['seconds']} s; critic fit: {out['critic']['train_accuracy']:.3f} train / "
          f"{out['critic']['val_accuracy']:.3f} val")
    for step, share in out["critic_says_requested"].items():
        print(f"step {step:>2}: critic names the requested genre {share:.3f}, the music's genre "
              f"{out['critic_says_music_genre'][step]:.3f}")
    print(f"final: control classifier names the requested genre {out['classifier_says_requested']:.3f} "
          f"(without the posture groups {out['classifier_without_posture_says_requested']:.3f}); "
          f"critic yes but classifier no {out['critic_yes_classifier_no']:.3f}")
    if out["feature_critic_last_step_says_requested"] is not None:
        print(f"the feature critic alone names it {out['feature_critic_last_step_says_requested']:.3f} at the "
              "last step")
    print("misses, mean logit(requested) - logit(label) by descriptor group: " + ", ".join(
        f"{k} {v:+.2f}" for k, v in out["misses_logit_gap_by_group"].items() if v is not None))
    for name, row in out["per_genre"].items():
        print(f"  {name:9s} classifier {row['classifier']:.2f}  critic {row['critic_last_step']:.2f}  "
              f"(classifier on real test windows {out['classifier_real_test_accuracy'].get(name, float('nan')):.2f})  "
              f"labelled as {', '.join(row['classifier_labels'])}; posture spread z generated "
              f"{row['descriptor_z']['pos_std']['generated']:+.2f} vs real "
              f"{_num(row['descriptor_z']['pos_std']['real_test'])}")
    if args.json:
        atomic_write_json(Path(args.json), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
