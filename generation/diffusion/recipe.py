"""A generator training recipe: one JSON file holding the denoiser's and the training loop's settings.

Why a file: the shipped model's recipe (``generation/diffusion/recipes/cpu.json``; every run directory's
config.json holds the settings it was trained with) is one artefact a user can read, re-run and vary (``dancesearch generate train --config FILE``),
instead of a command line that grows a flag per option. Unknown or mistyped fields are errors naming the file
and the field, so a typo cannot silently train the default.

    {"denoiser": {"d_model": 192, "time_stride": 4, "overlap_upsampling": true, ...},
     "train": {"minutes": 85, "music_swap": 0.25, "loss_combination": "fixed", ...}}
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from encoders.errors import DanceSearchError, InputError

from .denoiser import DenoiserConfig
from .train import TrainConfig

SECTIONS = {"denoiser": DenoiserConfig, "train": TrainConfig}
DEFAULT_DENOISER = {"time_stride": 4}
"""What the CLI trains when no recipe names it: 4-s windows downsampled x4 (30 tokens), the CPU-sized default."""


def load_recipe(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read and check a recipe file; returns ``{"denoiser": {...}, "train": {...}}`` (either may be empty)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "recipe file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON recipe: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(path, "a recipe is a JSON object", expected="{\"denoiser\": {...}, \"train\": {...}}",
                         got=type(raw).__name__)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise InputError(path, "unknown recipe section", field=unknown[0], expected=" or ".join(SECTIONS),
                         got=unknown[0])
    out: dict[str, dict[str, Any]] = {}
    for name, cls in SECTIONS.items():
        section = raw.get(name, {})
        if not isinstance(section, dict):
            raise InputError(path, "a recipe section is a JSON object", field=name, got=type(section).__name__)
        known = {f.name for f in fields(cls)}
        bad = sorted(set(section) - known)
        if bad:
            raise InputError(path, f"unknown {name} setting", field=f"{name}.{bad[0]}",
                             expected=", ".join(sorted(known)), got=bad[0])
        out[name] = dict(section)
    return out


def build_configs(recipe: dict[str, dict[str, Any]] | None = None, source: str | Path = "recipe",
                  **train_overrides: Any) -> tuple[DenoiserConfig, TrainConfig]:
    """The two dataclasses from a recipe, with explicit training overrides (CLI flags given) applied last."""
    recipe = recipe or {}
    denoiser_kw = {**DEFAULT_DENOISER, **recipe.get("denoiser", {})}
    train_kw = {**recipe.get("train", {}), **{k: v for k, v in train_overrides.items() if v is not None}}
    try:
        return DenoiserConfig(**denoiser_kw), TrainConfig(**train_kw)
    except InputError:
        raise
    except DanceSearchError as exc:                 # a field check of the dataclasses: name the recipe it came from
        raise InputError(Path(source), str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise InputError(Path(source), f"recipe values do not make a valid configuration: {exc}") from exc
