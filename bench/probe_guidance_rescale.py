"""Probe: CFG-rescale on the genre-guided sample, a sampling variant the product does not ship (issue 14).

Why: a genre guidance weight of 3 raises control on v7 (54.6% -> 61.4%) but costs kinetic realism (FID_k
31.5 -> 38.3, jerk up; docs/results/generation.md). Guidance rescale (Lin et al. 2024, "Common Diffusion Noise
Schedules and Sample Steps are Flawed", sec. 3.4; diffusers' ``rescale_noise_cfg``) is the standard remedy for
over-driven guidance: the guided prediction is scaled to the standard deviation of the conditional one,
x = phi * x_cfg * std(x_cond) / std(x_cfg) + (1 - phi) * x_cfg, std per sample over all dims. Here it is applied
to the guided clean-motion prediction of runs that set ``genre_guidance`` (runs without it are untouched, so the
baseline is the product's own sampling), by wrapping ``sampling.guided_prediction`` in this process only, and
the runs are scored by the same paired comparison as every generator table (``ablate_generator.py compare``).

    python bench/probe_guidance_rescale.py --phi 0.7 -- --home .dancesearch --runs v7=models/generator \\
        "v7_gg3_r07=models/generator@genre_guidance=3" --baseline v7 --control-music 18 --threads 2 \\
        --out bench/results/guidance_rescale_v7.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rescaled_guidance(original, phi: float):
    """``guided_prediction`` with CFG-rescale on the genre-guided prediction (see module docstring)."""
    def guided(model, x, t, music, genre, guidance, genre_guidance=None, with_variance=False):
        x0, v = original(model, x, t, music, genre, guidance, genre_guidance, with_variance)
        if genre_guidance is None:
            return x0, v
        cond, _ = original(model, x, t, music, genre, 1.0, None, with_variance)      # x0(m, g)
        dims = list(range(1, x0.ndim))
        factor = cond.std(dim=dims, keepdim=True) / x0.std(dim=dims, keepdim=True).clamp_min(1e-8)
        return phi * (x0 * factor) + (1.0 - phi) * x0, v
    return guided


def main() -> int:
    argv = sys.argv[1:]
    own, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phi", type=float, default=0.7, help="rescale share (Lin et al.'s 0.7)")
    args = ap.parse_args(own)
    if not 0.0 <= args.phi <= 1.0:
        ap.error(f"--phi must be in [0, 1], got {args.phi}")
    import bench.ablate_generator as ablate
    import generation.diffusion.sampling as sampling

    sampling.guided_prediction = rescaled_guidance(sampling.guided_prediction, args.phi)
    sys.argv = ["ablate_generator.py", "compare", *rest]
    return ablate.main()


if __name__ == "__main__":
    raise SystemExit(main())
