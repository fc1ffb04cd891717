"""Genre-controlled music-to-dance diffusion (GCDance, issue 14), sized for a CPU.

- ``denoiser``: body and hand Transformer experts with music cross-attention, body features injected into
  the hand branch, genre + step FiLM (Fig. 3-4, eq. 3-4), temporal downsampling for fewer tokens;
- ``music_tower``: GCDance's high-level "FM" music features from the retrieval model's frozen music tower;
- ``popdg``: POPDG's options (learned variance with the hybrid loss, DS-attention with the Space Augmentation
  Algorithm, the Alignment Module), each a ``DenoiserConfig`` switch, off by default;
- ``schedule``: cosine schedule and DDIM for an x0-predicting model (eq. 5, 14);
- ``sampling``: classifier-free guidance, inpainting by joint / time masks (eq. 15), long-term sampling of
  overlapping windows as one batch with a blended assembly, stochastic sampling with a fixed or learned variance;
- ``losses``: eq. 5-8 (simple, FK joints, velocity, foot contact);
- ``mtl``: fixed / Nash-MTL / Aligned-MTL loss weighting (Algorithms 1-2);
- ``music_swap``: genre-swapped music, the training augmentation that makes the genre prompt count;
- ``genre_code``: what the genre FiLM adapter reads (the prompt embeddings, or whitened over the genre set);
- ``genre_critic``: a frozen motion genre critic whose cross-entropy on the predicted x0 is a training loss
  (``TrainConfig.genre_loss_weight``): how strongly the requested genre must show;
- ``train`` / ``recipe`` / ``run_dir``: the training loop, recipe files (``recipes/cpu.json`` is the shipped
  model's) and the versioned run directory; ``pipeline.DancePipeline.from_pretrained`` samples from one;
- ``evaluate``, ``editing``, ``cli`` (``dancesearch generate [train]``).
"""
