"""Paired comparison and ablation bench for the generator (issue 14: "the ablation table shaped like GCDance
Table III ... and POPDG's options, each as a paired comparison on the same test windows").

Two sub-commands:

``compare``: every run generates one 4-s window per real test window (at most ``--windows``, evenly spread
over the split), from the same music, genre and seed for every run (with no cap these are exactly the windows
``bench/eval_generator.py`` generates), and is scored with ``evaluate_generation`` (protocol ``dancesearch``)
against those real windows. Genre control is GCDance's test as in ``eval_generator``: one
``MotionGenreClassifier`` fitted once on the real train windows (its test accuracy reported) labels windows
generated for ``--control-music`` fixed test music windows with every genre requested in turn. A second
classifier without the posture groups judges the same windows (``control_no_posture``), so a generator trained
against a posture critic is not judged only by what it was trained on.

Why paired: on ~100 test windows the spread of a metric over windows is far larger than the effect of most
options, so two runs are compared on the same windows and a difference counts only when its 95% bootstrap
interval excludes 0. The window indices are resampled once per draw and every run (and every metric) is
scored on that same resample:

- per-window metrics (BAS, PFC, PBC, jerk): the mean over windows of the paired difference;
- pooled metrics (foot skating: sliding / contact joint-steps; floor penetration: frames below / frames),
  as the suite pools them: the difference of the pooled ratios;
- set-level metrics (FID_k / FID_g / FID_hand, Div_k / Div_g / Div_hand): both runs' scores on the resampled
  generated windows against the same resampled real windows (real window i stays paired with the windows
  generated from its music), so the interval covers the choice of test windows as well;
- control hits (both judges): per (music window, genre) item, resampled over items.

The baseline is also compared with itself (every difference exactly 0: a check that the pairing holds).

``train``: each variant of a variants file ({"name": {"denoiser": {...}, "train": {...}}, ...}; keys starting
with ``_`` are comments) is deep-merged onto a base recipe, checked as a recipe (``generation.diffusion.recipe``)
before anything starts, and trained into ``OUT_DIR/NAME`` by ``dancesearch generate train --config
OUT_DIR/NAME.recipe.json --out OUT_DIR/NAME --home H --json`` in ``--parallel`` subprocesses (each with
``OMP_NUM_THREADS`` and the recipe's ``num_threads`` = ``--threads``; log in ``OUT_DIR/NAME.log``). A
finished variant leaves ``OUT_DIR/NAME.done.json`` and is skipped on the next call (resumable); a run finished
from another recipe is an error rather than silently kept or overwritten. ``--minutes`` / ``--steps`` set every
variant's budget and ``--set SECTION.KEY=VALUE`` any other setting of every variant (e.g. a warm-up that fits
a short budget). ``--compare`` then compares all variants, the first (or ``--baseline``) as the baseline.

``bench/generator_ablation_variants.json`` holds the issue's rows, each exactly one change from ``base``
(fixed loss weights, no genre-swapped music, no music tower, no genre critic): ``swap`` (music_swap 0.3), ``fm`` (the
retrieval model's music tower, GCDance's "FM"), ``nash`` / ``aligned`` (Nash-MTL / Aligned-MTL, task weights
updated every 4 steps), POPDG's ``learned_variance``, ``ds_attention``, ``alignment_module``, and
``genre_critic`` (the frozen genre critic's loss, ``generation/diffusion/genre_critic.py``). GCDance's
"+ genre classifier module" row is not retrained: in this build it is the separate text -> genre classifier
(``models/genre_text``, measured in ``docs/results/genre_text.md``), which picks the genre prompt and does not
change the denoiser, so the table cites that result instead.

    python bench/ablate_generator.py compare --home .dancesearch \\
        --runs old=models/generator new=RUN --baseline old --control-music 18 --out bench/results/X.json
    python bench/ablate_generator.py train --home .dancesearch --base generation/diffusion/recipes/cpu_v3.json \\
        --variants bench/generator_ablation_variants.json --out-dir RUNS --minutes 7 --parallel 2 --threads 1 \\
        --set train.warmup_steps=30 --set train.eval_every=50 --compare --control-music 18
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402
from encoders.cliutil import bounded_number, positive_int  # noqa: E402
from encoders.errors import DanceSearchError, InputError  # noqa: E402

PROTOCOL = "dancesearch"
BATCH = 36
"""Windows sampled per batch; with the seed ``seed + first index of the batch`` as ``generate_for_split``."""
DEFAULT_OUT = ROOT / "bench" / "results" / "generator_ablation.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SET_METRICS = ("fid_k", "fid_g", "fid_hand", "div_k", "div_g", "div_hand")
WINDOW_METRICS = ("bas", "pfc", "pbc", "foot_skating", "floor_penetration", "jerk")
TABLE = (("FID_k", "fid_k"), ("FID_g", "fid_g"), ("FID_hand", "fid_hand"), ("Div_k", "div_k"), ("Div_g", "div_g"),
         ("BAS", "bas"), ("PFC", "pfc"), ("PBC", "pbc"), ("skating", "foot_skating"), ("jerk", "jerk"),
         ("control", "control"), ("control w/o posture", "control_no_posture"))
CONTROL_JUDGES = ("control", "control_no_posture")
"""The control test's two judges of the same generated windows: the classifier on every descriptor group, and
one without the posture groups (``genre_control.WITHOUT_POSTURE``), which a posture critic does not train on."""


# ---------------------------------------------------------------------------------------------- variants / train

def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it: nested objects merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, f"{what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON {what}: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(path, f"a {what} is a JSON object", got=type(raw).__name__)
    return raw


def load_variants(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{name: overrides}`` from a variants file, in file order; keys starting with ``_`` are comments.

    Only the shape is checked here (names usable as folder names, overrides that are recipe-shaped objects);
    :func:`plan_training` checks every merged recipe as ``generate train`` would.
    """
    path = Path(path)
    raw = _read_json_object(path, "variants file")
    variants = {k: v for k, v in raw.items() if not k.startswith("_")}
    if not variants:
        raise InputError(path, "no variants in the file", expected='{"name": {"denoiser": {...}, "train": {...}}}',
                         got="none")
    for name, override in variants.items():
        if not NAME_RE.match(name):
            raise InputError(path, "a variant name becomes a run folder name", field=name,
                             expected="letters, digits, '_', '.', '-' (not starting with '.')", got=repr(name))
        if not isinstance(override, dict):
            raise InputError(path, "a variant is a JSON object of recipe overrides", field=name,
                             expected='{"denoiser": {...}, "train": {...}}', got=type(override).__name__)
    return variants


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``SECTION.KEY=VALUE`` (VALUE as JSON, else a string) -> a recipe-shaped override for every variant."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not section or not name:
            raise InputError(None, "a setting is SECTION.KEY=VALUE", field="--set",
                             expected="e.g. train.warmup_steps=30", got=repr(item))
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out.setdefault(section, {})[name] = value
    return out


def variant_recipe(base: dict[str, Any], override: dict[str, Any], threads: int, minutes: float | None,
                   steps: int | None, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe one variant trains with: base + variant overrides + ``--set`` settings, then the bench's thread
    count and budget."""
    recipe = deep_merge(deep_merge(base, override), settings or {})
    train = recipe.setdefault("train", {})
    if isinstance(train, dict):                       # else load_recipe names the bad section
        train["num_threads"] = threads
        if minutes is not None:
            train["minutes"] = minutes
        if steps is not None:
            train["steps"] = steps
    return recipe


@dataclass
class TrainJob:
    name: str
    recipe: dict[str, Any]
    recipe_path: Path
    run_dir: Path
    log: Path
    done: Path

    @property
    def complete(self) -> bool:
        return self.done.is_file() and all((self.run_dir / f).is_file() for f in ("model.pt", "config.json"))


def plan_training(base_path: Path, variants_path: Path, out_dir: Path, threads: int, minutes: float | None = None,
                  steps: int | None = None, only: Sequence[str] | None = None,
                  settings: dict[str, Any] | None = None) -> list[TrainJob]:
    """One job per variant, every merged recipe checked (and written) before any training starts."""
    from generation.diffusion.recipe import build_configs, load_recipe

    base = load_recipe(base_path)                     # the base is itself a valid recipe
    variants = load_variants(variants_path)
    if only:
        unknown = [n for n in only if n not in variants]
        if unknown:
            raise InputError(variants_path, "--only names a variant the file does not have", field=unknown[0],
                             expected=", ".join(variants), got=unknown[0])
        variants = {n: v for n, v in variants.items() if n in only}
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name, override in variants.items():
        recipe = variant_recipe(base, override, threads, minutes, steps, settings)
        job = TrainJob(name, recipe, out_dir / f"{name}.recipe.json", out_dir / name, out_dir / f"{name}.log",
                       out_dir / f"{name}.done.json")
        if job.done.is_file():
            previous = json.loads(job.done.read_text()).get("recipe")
            if previous != recipe:
                raise InputError(job.done, f"variant {name!r} was trained from another recipe than it would be now "
                                           f"(variants, base, --minutes/--steps or --threads changed); delete "
                                           f"{job.run_dir} and {job.done}, or use another --out-dir")
        atomic_write_json(job.recipe_path, recipe)
        try:                                          # the same checks `generate train --config` makes
            build_configs(load_recipe(job.recipe_path), job.recipe_path)
        except DanceSearchError as exc:
            raise InputError(variants_path, f"variant {name!r} does not make a valid recipe: {exc}") from exc
        jobs.append(job)
    return jobs


def _cli_command() -> list[str]:
    exe = Path(sys.executable).parent / "dancesearch"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "ui.cli"]


def run_training(jobs: Sequence[TrainJob], home: Path, parallel: int = 1, threads: int = 1,
                 poll_s: float = 0.5) -> dict[str, dict[str, Any]]:
    """Train the incomplete jobs, ``parallel`` at a time; returns ``{name: {"status", "seconds", ...}}``.

    A failed variant does not stop the others; its status says so and its log holds the reason.
    """
    from tqdm import tqdm

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONUNBUFFERED"] = "1"
    status: dict[str, dict[str, Any]] = {}
    pending = []
    for job in jobs:
        if job.complete:
            status[job.name] = {"status": "skipped (already trained)", "run": str(job.run_dir)}
        else:
            pending.append(job)
    bar = tqdm(total=len(pending), desc="train variants", unit="run", file=sys.stderr)
    running: list[tuple[TrainJob, subprocess.Popen, Any, Path, float]] = []
    try:
        while pending or running:
            while pending and len(running) < max(1, parallel):
                job = pending.pop(0)
                cmd = _cli_command() + ["generate", "train", "--config", str(job.recipe_path), "--out",
                                        str(job.run_dir), "--home", str(home), "--json"]
                stdout = job.log.with_name(f".{job.name}.stdout")
                log = open(job.log, "w")
                log.write("$ " + " ".join(cmd) + "\n")
                log.flush()
                with open(stdout, "w") as out:
                    proc = subprocess.Popen(cmd, stdout=out, stderr=log, cwd=ROOT, env=env)
                running.append((job, proc, log, stdout, time.perf_counter()))
                bar.set_postfix(running=",".join(j.name for j, *_ in running))
            time.sleep(poll_s)
            for item in list(running):
                job, proc, log, stdout, t0 = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                log.close()
                seconds = round(time.perf_counter() - t0, 1)
                text = stdout.read_text() if stdout.is_file() else ""
                stdout.unlink(missing_ok=True)
                if proc.returncode == 0:
                    try:
                        result = json.loads(text.strip().splitlines()[-1])
                    except (IndexError, json.JSONDecodeError):
                        result = None
                    atomic_write_json(job.done, {"recipe": job.recipe, "result": result, "seconds": seconds})
                    status[job.name] = {"status": "trained", "seconds": seconds, "run": str(job.run_dir)}
                else:
                    status[job.name] = {"status": f"failed (exit {proc.returncode})", "seconds": seconds,
                                        "log": str(job.log)}
                bar.update(1)
    except KeyboardInterrupt:
        for job, proc, log, _, _ in running:          # only the children this call started
            proc.terminate()
        for job, proc, log, _, _ in running:
            proc.wait()
            log.close()
        raise
    finally:
        bar.close()
    return status


# ------------------------------------------------------------------------------------------------------ compare

SAMPLING_KEYS = {"steps": int, "guidance": float, "genre_guidance": float, "stochastic": bool, "foot_lock": bool}
"""What ``NAME=DIR@key=value,...`` may set for one run (the rest come from ``--steps`` / ``--guidance``);
``foot_lock`` applies ``generation.representation.foot_lock`` to every generated window (control test too)."""


def _sampling_value(item: str, key: str, raw: str) -> Any:
    """One ``key=value`` of a run's sampling, typed and range-checked (errors name the item and the key)."""
    kind = SAMPLING_KEYS.get(key)
    if kind is None:
        raise InputError(None, f"unknown sampling setting in {item!r}", field="--runs",
                         expected=", ".join(SAMPLING_KEYS), got=key)
    if kind is bool and raw.lower() in ("true", "false", "1", "0"):
        return raw.lower() in ("true", "1")
    try:
        if kind is bool:
            raise argparse.ArgumentTypeError(raw)
        value = bounded_number(kind, None, None, key)(raw)      # typed and finite: the CLI's one number parser
    except argparse.ArgumentTypeError:
        raise InputError(None, f"bad value for {key} in {item!r}", field="--runs", expected=kind.__name__,
                         got=raw) from None
    if value < (1 if key == "steps" else 0):
        raise InputError(None, f"{key} out of range in {item!r}", field="--runs",
                         expected=">= 1" if key == "steps" else ">= 0", got=raw)
    return value


def parse_runs(items: Sequence[str]) -> tuple[list[tuple[str, Path]], dict[str, dict[str, Any]]]:
    """``NAME=DIR`` or ``NAME=DIR@key=value,...`` items (names unique) -> the runs and each one's sampling settings.

    One run directory may appear under several names with different sampling (``v2=RUN v2_g3=RUN@guidance=3``),
    so sampling settings are compared on the same windows exactly as models are."""
    runs: list[tuple[str, Path]] = []
    sampling: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        path, at, settings = rest.rpartition("@")
        if not at or not all("=" in pair for pair in settings.split(",")):
            path, settings = rest, ""                    # no settings: an "@" belongs to the path
        if not sep or not NAME_RE.match(name) or not path:
            raise InputError(None, "a run is NAME=DIR or NAME=DIR@key=value,...", field="--runs",
                             expected="e.g. old=models/generator or g3=models/generator@guidance=3", got=repr(item))
        if name in {n for n, _ in runs}:
            raise InputError(None, "run names must be unique", field="--runs", got=name)
        chosen: dict[str, Any] = {}
        for pair in filter(None, settings.split(",")):
            key, _, raw = pair.partition("=")
            if key.strip() in chosen:
                raise InputError(None, f"{key.strip()} given twice in {item!r}", field="--runs", got=pair)
            chosen[key.strip()] = _sampling_value(item, key.strip(), raw.strip())
        runs.append((name, Path(path)))
        sampling[name] = chosen
    return runs, sampling


def control_music_indices(n: int, cap: int) -> list[int]:
    """The control test's music windows: every third window of the split (eval_generator's choice), at most
    ``cap``; neighbouring windows of one clip would repeat each other's music."""
    return list(range(0, n, 3))[:cap]


def spread_indices(n: int, cap: int | None) -> list[int]:
    """All of ``range(n)``, or ``cap`` indices spread evenly over it (every part of the split, not its start)."""
    if cap is None or cap >= n:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, cap)})


def window_values(samples, bas: Sequence[float | None], proto, notes: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per-window values whose set-level aggregate is the suite's: ``{"kind": "mean", "v"}`` (BAS, PFC, PBC,
    jerk: the suite averages them) or ``{"kind": "ratio", "num", "den"}`` (skating, penetration: pooled)."""
    from generation.metrics.jerk import mean_jerk
    from generation.metrics.pbc import pbc
    from generation.metrics.penetration import floor_penetration
    from generation.metrics.pfc import pfc
    from generation.metrics.skating import foot_skating

    out: dict[str, dict[str, np.ndarray]] = {
        "bas": {"kind": "mean", "v": np.array([np.nan if b is None else b for b in bas], dtype=np.float64)}}
    for name, fn in (("pfc", pfc), ("pbc", pbc), ("jerk", mean_jerk)):
        try:
            out[name] = {"kind": "mean", "v": np.array([fn(s) for s in samples], dtype=np.float64)}
        except InputError as exc:
            notes.append(f"{name} not measured per window: {exc}")
    skate = [foot_skating(s, mode=proto.skating_mode) for s in samples]
    if proto.skating_mode == "project":
        out["foot_skating"] = {"kind": "ratio", "num": np.array([r.sliding_frames for r in skate], dtype=np.float64),
                               "den": np.array([r.contact_frames for r in skate], dtype=np.float64)}
    else:
        out["foot_skating"] = {"kind": "mean", "v": np.array([r.ratio for r in skate], dtype=np.float64)}
    pen = [floor_penetration(s) for s in samples]
    out["floor_penetration"] = {"kind": "ratio", "num": np.array([r.frames_below for r in pen], dtype=np.float64),
                                "den": np.array([r.frames for r in pen], dtype=np.float64)}
    return out


def _aggregate(entry: dict[str, np.ndarray], idx: np.ndarray | None = None) -> np.ndarray | float:
    """The set value of per-window values (on index rows ``idx`` (D, n) when given: one value per draw)."""
    if entry["kind"] == "mean":
        v = entry["v"] if idx is None else entry["v"][idx]
        with np.errstate(all="ignore"):
            return np.nanmean(v, axis=-1) if np.isfinite(v).any() else np.full(v.shape[:-1], np.nan)
    num = entry["num"] if idx is None else entry["num"][idx]
    den = entry["den"] if idx is None else entry["den"][idx]
    with np.errstate(all="ignore"):
        return num.sum(-1) / den.sum(-1)


def _per_window_json(values: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """The per-window values as JSON (NaN -> null), so other pairings can be computed from the file later."""
    def lst(a: np.ndarray) -> list[float | None]:
        return [float(x) if np.isfinite(x) else None for x in np.asarray(a, dtype=np.float64)]
    return {k: {"kind": e["kind"], **{f: lst(e[f]) for f in ("v", "num", "den") if f in e}}
            for k, e in values.items()}


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _interval(boot: np.ndarray) -> list[float | None]:
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return [None, None]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return [float(lo), float(hi)]


def run_facts(run_dir: Path, pipe) -> dict[str, Any]:
    """Size and training facts of a run directory (its config.json and history.json)."""
    cfg = json.loads((run_dir / "config.json").read_text())
    data = cfg.get("data", {})
    try:
        history = json.loads((run_dir / "history.json").read_text())
        steps_done = history[-1]["step"] if history else None
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        steps_done = None
    return {"dir": str(run_dir), "model_id": pipe.model_id,
            "parameters": int(sum(p.numel() for p in pipe.model.parameters())),
            "checkpoint_bytes": (run_dir / "model.pt").stat().st_size,
            "training": {"steps_done": steps_done, "best_step": data.get("best_step"),
                         "windows_seen": data.get("windows_seen"), "train_seconds": data.get("train_seconds"),
                         "best_val_simple": data.get("best_val_simple"), "windows_train": data.get("windows_train"),
                         "cache_hash": data.get("cache_hash")},
            "config": {"denoiser": cfg.get("denoiser", {}), "train": cfg.get("train", {})}}


def compare_runs(home: Path, runs: Sequence[tuple[str, Path]], baseline: str | None = None,
                 windows: int | None = None, control_music: int = 36, steps: int = 20, guidance: float = 2.0,
                 seed: int = 0, draws: int = 1000, threads: int = 2,
                 sampling: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Score every run on the same test windows and compare each with the baseline (see the module docstring).

    ``sampling`` maps a run name to its own sampling settings (``SAMPLING_KEYS``) over ``steps`` / ``guidance``."""
    import torch
    from tqdm import tqdm

    from bench.machine import machine_info
    from generation.diffusion.evaluate import generate_for_split
    from generation.diffusion.pipeline import DancePipeline
    from generation.metrics.catalog_source import window_samples, window_store
    from generation.metrics.genre_control import WITHOUT_POSTURE, MotionGenreClassifier, control_hits_by
    from generation.metrics.protocols import FINGER_JOINTS, get_protocol
    from generation.metrics.suite import evaluate_generation, physical_set_metrics
    from generation.representation.foot_lock import lock_planted_feet

    if not runs:
        raise InputError(None, "no runs to compare", field="--runs", expected="NAME=DIR ...", got="none")
    names = [n for n, _ in runs]
    baseline = baseline or names[0]
    if baseline not in names:
        raise InputError(None, "the baseline is not one of the runs", field="--baseline", expected=", ".join(names),
                         got=baseline)
    for name, path in runs:
        for f in ("config.json", "model.pt"):
            if not (path / f).is_file():
                raise InputError(path, f"run {name!r} is not a generator run directory (no {f})", field="--runs")
    if draws < 1:
        raise InputError(None, "at least one bootstrap draw", field="--draws", expected=">= 1", got=str(draws))
    torch.set_num_threads(max(1, threads))
    t_start = time.perf_counter()
    proto = get_protocol(PROTOCOL)
    store = window_store(home)
    n_test = store.num_windows("test")
    if n_test < 2:
        raise DanceSearchError(f"the catalog at {home} has {n_test} test windows: FID and Div need at least 2")
    idx = spread_indices(n_test, windows)
    all_test = window_samples(store, "test")
    real = [all_test[i] for i in idx]
    train = window_samples(store, "train")
    if not train:
        raise DanceSearchError(f"the catalog at {home} has no train windows to fit the motion genre classifier on")
    print(f"{len(real)} of {n_test} test windows; fitting the motion genre classifier on {len(train)} train windows",
          file=sys.stderr)
    labels, test_labels = [s.meta["genre"] for s in train], [s.meta["genre"] for s in all_test]
    judges = {"control": MotionGenreClassifier.fit(train, labels),
              "control_no_posture": MotionGenreClassifier.fit(train, labels, groups=WITHOUT_POSTURE)}
    clf = judges["control"]
    classifier = {"train_accuracy": clf.accuracy(train, labels), "test_accuracy": clf.accuracy(all_test, test_labels),
                  "test_accuracy_without_posture": judges["control_no_posture"].accuracy(all_test, test_labels),
                  "train_windows": len(train), "test_windows": len(all_test), "genres": len(clf.genres)}
    music_idx = control_music_indices(n_test, control_music)
    control_music_arr = np.stack([store.window("test", i).music for i in music_idx]) if music_idx else None

    hands = proto.hands and all(s.has_joints(FINGER_JOINTS) for s in real)
    gt_feats = [proto.features(s, hands) for s in real]
    gt_notes: list[str] = []
    gt_physical = physical_set_metrics(real, proto, gt_notes, "gt")     # once: the same real windows for every run
    results: dict[str, dict[str, Any]] = {}
    per_run: dict[str, dict[str, Any]] = {}
    genres_seen: list[str] | None = None
    for name, path in tqdm(runs, desc="runs", unit="run", file=sys.stderr):
        pipe = DancePipeline.from_pretrained(path)
        if pipe.window_frames != store.config.window_frames:
            raise InputError(path, f"run {name!r} makes {pipe.window_frames}-frame windows, the test windows have "
                                   f"{store.config.window_frames}", field="denoiser.window_frames")
        if genres_seen is None:
            genres_seen = list(pipe.genres)
        elif list(pipe.genres) != genres_seen:
            raise InputError(path, f"run {name!r} was trained on other genres than {runs[0][0]!r}: its control test "
                                   f"would not be comparable", field="genres", expected=", ".join(genres_seen),
                             got=", ".join(pipe.genres))
        how = {"steps": steps, "guidance": guidance, "genre_guidance": None, "stochastic": False, "foot_lock": False,
               **(sampling or {}).get(name, {})}
        post = lock_planted_feet if how["foot_lock"] else None
        gen, gen_s = generate_for_split(pipe, store, "test", how["steps"], how["guidance"], seed, BATCH, indices=idx,
                                        progress=True, desc=f"generate {name}", genre_guidance=how["genre_guidance"],
                                        stochastic=how["stochastic"], postprocess=post)
        # physical metrics come from the per-window values below (the suite would compute them a second time)
        scored = evaluate_generation(gen, real, PROTOCOL, per_sample=True, return_features=True, with_physical=False)
        notes = list(scored["notes"]) + gt_notes
        bas = [r["bas"] for r in scored["per_sample"] if r["set"] == "pred"]
        values = window_values(gen, bas, proto, notes)
        t1 = time.perf_counter()
        hits_by = {}
        if control_music_arr is not None:
            hits_by = control_hits_by(pipe, judges, control_music_arr, seed + 1, how["steps"], how["guidance"],
                                      how["genre_guidance"], how["stochastic"], post)
            for judge, judged in hits_by.items():
                values[judge] = {"kind": "mean", "v": judged.ravel()}
        hits = hits_by.get("control")
        control_s = time.perf_counter() - t1
        metrics = {k: scored["metrics"].get(k) for k in SET_METRICS + ("bas",)}
        for k in WINDOW_METRICS[1:]:
            metrics[k] = _finite(_aggregate(values[k])) if k in values else None
            bad = int(sum((~np.isfinite(values[k][f])).sum() for f in ("v", "num", "den") if f in values.get(k, {})))
            if bad:
                notes.append(f"{k}: {bad} per-window values not finite (a mean skips NaN ones; a pooled ratio "
                             "with one is not reported)")
        for judge in CONTROL_JUDGES:
            metrics[judge] = float(hits_by[judge].mean()) if judge in hits_by else None
        results[name] = {**run_facts(path, pipe), "sampling": how, "metrics": metrics,
                         "per_genre_control": (None if hits is None else
                                               {g: float(h) for g, h in zip(pipe.genres, hits.mean(1))}),
                         "per_genre_control_no_posture": (
                             None if hits is None else {g: float(h) for g, h in
                                                        zip(pipe.genres, hits_by["control_no_posture"].mean(1))}),
                         "generation_seconds": round(gen_s, 2), "control_seconds": round(control_s, 2),
                         "per_window": _per_window_json(values), "notes": notes}
        feats = scored.pop("features")["pred"]              # the suite's own features of the generated windows
        if hands and any("hand" not in f for f in feats):
            raise InputError(path, f"run {name!r} generates windows without finger joints; the test windows have "
                                   "them, so the hand figures cannot be paired", field="representation")
        per_run[name] = {"values": values, "feats": feats, "gt_reference": scored["gt_reference"]}
        del pipe

    paired = paired_differences(per_run, gt_feats, baseline, proto, hands, draws, seed, len(real))
    for name in names:
        results[name]["paired_vs_baseline"] = paired[name]
    ref = per_run[baseline]
    ground_truth = {**{k: v for k, v in ref["gt_reference"].items()}, **gt_physical}
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
            "home": str(home), "protocol": PROTOCOL, "baseline": baseline, "runs": results, "order": names,
            "settings": {"windows": len(real), "test_windows": n_test, "window_indices": idx, "steps": steps,
                         "guidance": guidance, "seed": seed, "control_seed": seed + 1, "draws": draws,
                         "control_music": len(music_idx), "control_music_indices": music_idx,
                         "threads": threads, "batch": BATCH},
            "classifier": classifier, "ground_truth": ground_truth,
            "seconds": round(time.perf_counter() - t_start, 1)}


def paired_differences(per_run: dict[str, dict[str, Any]], gt_feats: list[dict[str, np.ndarray]], baseline: str,
                       proto, hands: bool, draws: int, seed: int, n: int) -> dict[str, dict[str, Any]]:
    """``{run: {metric: {"diff", "ci95", "over"}}}``: run minus baseline, point value on all windows, 95% interval
    of the same difference over ``draws`` shared resamples of the windows (see the module docstring)."""
    from tqdm import tqdm

    from generation.metrics.fid import score_feature_sets

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(draws, n))
    items = len(per_run[baseline]["values"].get("control", {"v": []})["v"])     # every judge labels the same items
    item_idx = rng.integers(0, items, size=(draws, items)) if items else None
    kinds = [("kinetic", "k"), ("geometric", "g")] + ([("hand", "hand")] if hands else [])
    gt = {kind: np.stack([f[kind] for f in gt_feats]) for kind, _ in kinds}
    settings = {"normalise": proto.normalise, "drop_constant_below": proto.drop_constant_gt_dims}

    def set_scores(feats: list[dict[str, np.ndarray]], rows: np.ndarray | None) -> dict[str, float]:
        out = {}
        for kind, suffix in kinds:
            p = np.stack([f[kind] for f in feats])
            g = gt[kind]
            if rows is not None:
                p, g = p[rows], g[rows]
            sc = score_feature_sets(p, g, **settings)
            out[f"fid_{suffix}"], out[f"div_{suffix}"] = sc.fid, sc.div
        return out

    point = {name: set_scores(r["feats"], None) for name, r in per_run.items()}
    boot = {name: {k: np.empty(draws) for k in point[name]} for name in per_run}
    for d in tqdm(range(draws), desc="paired bootstrap", unit="draw", file=sys.stderr):
        for name, r in per_run.items():
            for k, v in set_scores(r["feats"], idx[d]).items():
                boot[name][k][d] = v

    out: dict[str, dict[str, Any]] = {}
    base = per_run[baseline]["values"]
    for name, r in per_run.items():
        rows: dict[str, Any] = {}
        for k in point[name]:
            with np.errstate(all="ignore"):
                rows[k] = {"diff": _finite(point[name][k] - point[baseline][k]),
                           "ci95": _interval(boot[name][k] - boot[baseline][k]), "over": "windows (set-level)"}
        for k, entry in r["values"].items():
            if k not in base or base[k]["kind"] != entry["kind"]:
                continue
            rows_idx = item_idx if k in CONTROL_JUDGES else idx
            if entry["kind"] == "mean":                 # the mean of the paired per-window differences
                diff = {"kind": "mean", "v": entry["v"] - base[k]["v"]}
                point_diff, boot_diff = _aggregate(diff), _aggregate(diff, rows_idx)
            else:                                       # difference of the pooled ratios
                point_diff = _aggregate(entry) - _aggregate(base[k])
                boot_diff = _aggregate(entry, rows_idx) - _aggregate(base[k], rows_idx)
            rows[k] = {"diff": _finite(point_diff), "ci95": _interval(np.asarray(boot_diff)),
                       "over": "(music window, genre) items" if k in CONTROL_JUDGES else
                               ("windows (pooled ratio)" if entry["kind"] == "ratio" else "windows")}
        out[name] = rows
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.4f}" if abs(x) < 1 else f"{x:.3g}" if abs(x) >= 100 else f"{x:.2f}"


def _signed(x: float | None) -> str:
    return "n/a" if x is None else ("+" if x >= 0 else "") + _fmt(x)


def markdown(result: dict[str, Any]) -> str:
    """One row per run: metric values and, for the other runs, the paired difference to the baseline [95% CI]."""
    s, base = result["settings"], result["baseline"]
    clf = result["classifier"]
    lines = [f"# Generator paired comparison (protocol `{result['protocol']}`)", "",
             f"{s['windows']} of {s['test_windows']} test windows (same music, genre and seed for every run), DDIM "
             f"{s['steps']} steps, guidance {s['guidance']:g}, seed {s['seed']}. Control: {s['control_music']} test "
             f"music windows x every genre, labelled by a motion genre classifier fitted on "
             f"{clf['train_windows']} real train windows (test accuracy {clf['test_accuracy']:.3f}); \"w/o posture\": "
             f"the same test judged by a classifier without the posture groups (test accuracy "
             f"{clf.get('test_accuracy_without_posture', float('nan')):.3f}). Differences "
             f"are run minus `{base}`, with 95% paired bootstrap intervals ({s['draws']} draws over windows); "
             "`*` marks an interval that excludes 0.", "",
             "| run | params | steps | windows seen | " + " | ".join(t for t, _ in TABLE) + " | gen s |",
             "|---|---:|---:|---:|" + "---:|" * len(TABLE) + "---:|"]
    for name in result["order"]:
        r = result["runs"][name]
        cells = []
        for _, key in TABLE:
            v = r["metrics"].get(key)
            cell = _fmt(v)
            p = r["paired_vs_baseline"].get(key)
            if name != base and p is not None:
                lo, hi = p["ci95"]
                star = "*" if lo is not None and hi is not None and (lo > 0 or hi < 0) else ""
                cell += f" ({_signed(p['diff'])} [{_signed(lo)}, {_signed(hi)}]{star})"
            cells.append(cell)
        t = r["training"]
        label = f"{name} (baseline)" if name == base else name
        own = {k: v for k, v in (r.get("sampling") or {}).items()
               if v is not None and v is not False and not (k in ("steps", "guidance") and v == s[k])}
        if own:
            label += " @ " + ", ".join(f"{k} {v}" for k, v in own.items())
        lines.append(f"| {label} | {r['parameters']:,} | {t.get('steps_done') or 'n/a'} | "
                     f"{t.get('windows_seen') or 'n/a'} | " + " | ".join(cells) + f" | {r['generation_seconds']:.1f} |")
    gt = result["ground_truth"]
    real = ["", "", ""] + [_fmt(gt.get(k)) for k in ("div_k", "div_g", "bas", "pfc", "pbc", "foot_skating",
                                                                 "jerk")] + ["", "", ""]
    lines.append("| real test windows | | | | " + " | ".join(real) + " |")
    lines += ["", "GCDance's \"+ genre classifier module\" row is the separate text -> genre classifier "
                  "(`models/genre_text`, docs/results/genre_text.md); it does not change the denoiser, so it is "
                  "cited there rather than retrained here.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- CLI

def _add_compare_options(p: argparse.ArgumentParser, steps_flag: str) -> None:
    p.add_argument("--baseline", default=None, help="the run the others are compared with (default: the first)")
    p.add_argument("--windows", type=positive_int, default=None, help="at most this many test windows (spread "
                                                                        "evenly; default: all)")
    p.add_argument("--control-music", type=bounded_number(int, 0, None, "--control-music"), default=36,
                   help="test music windows in the control test (every third test window; 0: no control test)")
    p.add_argument(steps_flag, dest="sample_steps", type=positive_int, default=20, help="DDIM steps (default 20)")
    p.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance weight (default 2)")
    p.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed (control uses seed + 1)")
    p.add_argument("--draws", type=positive_int, default=1000, help="bootstrap draws (default 1000)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result")
    p.add_argument("--markdown", type=Path, default=None, help="markdown table (default: --out with .md)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ablate_generator.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="score runs on the same test windows, paired differences to a baseline")
    c.add_argument("--home", type=Path, required=True)
    c.add_argument("--runs", nargs="+", required=True, metavar="NAME=DIR[@key=value,...]",
                   help="runs to score; after @ a run's own sampling: steps, guidance, genre_guidance, stochastic, "
                        "foot_lock (e.g. g3=models/generator@guidance=3,stochastic=true)")
    _add_compare_options(c, "--steps")
    c.add_argument("--threads", type=positive_int, default=2, help="torch threads (default 2)")
    t = sub.add_parser("train", help="train variants of a recipe (resumable), optionally then compare them")
    t.add_argument("--home", type=Path, required=True)
    t.add_argument("--base", type=Path, required=True, metavar="RECIPE.json")
    t.add_argument("--variants", type=Path, required=True, metavar="VARIANTS.json")
    t.add_argument("--out-dir", type=Path, required=True)
    t.add_argument("--minutes", type=bounded_number(float, 0.1, 10000.0, "--minutes"), default=None,
                   help="training budget per variant")
    t.add_argument("--steps", type=positive_int, default=None, help="training steps per variant (at most)")
    t.add_argument("--parallel", type=positive_int, default=1, help="variants trained at once (default 1)")
    t.add_argument("--threads", type=positive_int, default=1, help="threads per variant (default 1)")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="a recipe setting for every variant (after the variant's own; e.g. train.warmup_steps=30)")
    t.add_argument("--only", default=None, help="comma-separated variant names to train (default: all)")
    t.add_argument("--compare", action="store_true", help="then compare every variant (first = baseline)")
    t.add_argument("--compare-threads", type=positive_int, default=2, help="torch threads of the comparison")
    _add_compare_options(t, "--sample-steps")
    return ap


def _write(result: dict[str, Any], out: Path, md: Path | None) -> None:
    atomic_write_json(out, result)
    md = md or out.with_suffix(".md")
    atomic_write_text(md, markdown(result))
    print(f"wrote {out} and {md}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            runs, sampling = parse_runs(args.runs)
            result = compare_runs(args.home, runs, args.baseline, args.windows, args.control_music,
                                  args.sample_steps, args.guidance, args.seed, args.draws, args.threads, sampling)
            _write(result, args.out, args.markdown)
            return 0
        only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
        jobs = plan_training(args.base, args.variants, args.out_dir, args.threads, args.minutes, args.steps, only,
                             parse_settings(args.set))
        status = run_training(jobs, args.home, args.parallel, args.threads)
        print(json.dumps(status, indent=1), file=sys.stderr)
        failed = [n for n, s in status.items() if s["status"].startswith("failed")]
        if failed:
            print("error: variants failed: " + ", ".join(f"{n} (see {status[n]['log']})" for n in failed),
                  file=sys.stderr)
            return 1
        if args.compare:
            runs = [(j.name, j.run_dir) for j in jobs]
            result = compare_runs(args.home, runs, args.baseline, args.windows, args.control_music,
                                  args.sample_steps, args.guidance, args.seed, args.draws, args.compare_threads)
            _write(result, args.out, args.markdown)
        return 0
    except DanceSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
