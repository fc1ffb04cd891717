"""Diagnosis: which kinetic dimensions dominate a generator's FID_k under the `lodge-finedance` protocol?

LODGE z-scores both sets by the ground truth's per-dimension std, so a dimension that is nearly constant in the
real windows turns one unusual generated window into a huge FID term. Prints, per run, FID_k and the dimensions
with the largest (mean z)^2 + var(z), their ground-truth std and the window with the largest |z|.

    python bench/probe_lodge_fid_k.py --home .dancesearch --runs v2=RUN_V2 v3=models/generator
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from generation.diffusion.evaluate import generate_for_split  # noqa: E402
from generation.diffusion.pipeline import DancePipeline  # noqa: E402
from generation.metrics.catalog_source import window_samples, window_store  # noqa: E402
from generation.metrics.fid import score_feature_sets  # noqa: E402
from generation.metrics.protocols import get_protocol  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--home', required=True)
    ap.add_argument('--runs', nargs='+', required=True, metavar='NAME=DIR')
    args = ap.parse_args()
    torch.set_num_threads(2)
    store = window_store(args.home)
    real = window_samples(store, 'test')
    proto = get_protocol('lodge-finedance')
    g = np.stack([proto.features(s, False)['kinetic'] for s in real])
    mu, sd = g.mean(0), g.std(0)
    for name, run in (item.split('=', 1) for item in args.runs):
        pipe = DancePipeline.from_pretrained(run)
        gen, _ = generate_for_split(pipe, store, 'test', 20, 2.0, 0, 36)
        p = np.stack([proto.features(s, False)['kinetic'] for s in gen])
        sc = score_feature_sets(p, g, normalise=proto.normalise, drop_constant_below=proto.drop_constant_gt_dims)
        z = (p - mu) / (sd + 1e-10)
        contrib = z.mean(0) ** 2 + z.var(0)
        top = np.argsort(-contrib)[:6]
        print(name, pipe.model_id, 'FID_k', round(float(sc.fid), 1), 'dims', p.shape[1])
        print('  top dims', top.tolist(), 'contrib', np.round(contrib[top], 1).tolist(), 'gt sd', np.round(sd[top], 4).tolist())
        print('  max |z| per top dim', np.round(np.abs(z[:, top]).max(0), 1).tolist(), 'windows with max', np.abs(z[:, top]).argmax(0).tolist())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
