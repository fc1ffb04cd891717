"""M2PEnc, the music-to-pose-guidance encoder (Park, "Synthetically Trained Music-to-Pose Encoder Diffusion",
sections 3.1-3.4), trained on SDGPip guidance rendered from the corpus's dances.

Organised like diffusers: a config dataclass and model (:mod:`.model`), one ``from_pretrained(dir)`` /
``save_pretrained(dir)`` loading path (:mod:`.run_dir`, :class:`.pipeline.M2PEncPipeline`), inference in a
pipeline. Modules, one job each:

- ``data``: the synthetic pairs (music features at 15 fps <-> 64x64 guidance + keypoints), cached per clip,
  and the model's per-frame input (features [+ tokens] [+ beat / bar phase, ``DataConfig.beat_phase``]);
- ``tokens``: the retrieval model's music-tower tokens as an optional extra input;
- ``model``: :class:`M2PEnc` (FC -> 64x64 -> Inf-Conv3D / 3D attention -> guidance and heatmap heads);
- ``train``: L_guid (L1, optionally body-weighted) + L_heat (MSE) + optional temporal / motion-energy
  terms, AdamW with warm-up and cosine decay, wall-clock budget, resumable;
- ``run_dir``: the run folder (config.json, model.pt, state.pt, history.json, README.md);
- ``pipeline``: music -> :class:`Prediction`;
- ``evaluate``: test-split errors against the mean-guidance and generator baselines, paired bootstrap,
  and the comparison video;
- ``video``: guidance stacks as grid frames;
- ``cli``: ``dancesearch m2penc train | eval | render | compare``.

Importing this package imports torch (the model) but no renderer or encoder.
"""
from .data import GUIDANCE_CHANNELS, ClipPairs, DataConfig, render_pairs
from .model import M2PEnc, M2PEncConfig
from .pipeline import M2PEncPipeline, Prediction
from .run_dir import load_model, save_pretrained
from .train import TrainConfig, train_m2penc

__all__ = ["GUIDANCE_CHANNELS", "ClipPairs", "DataConfig", "render_pairs", "M2PEnc", "M2PEncConfig",
           "M2PEncPipeline", "Prediction", "load_model", "save_pretrained", "TrainConfig", "train_m2penc"]
