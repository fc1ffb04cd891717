"""Genre-controlled music-to-dance diffusion (GCDance, issue 14), sized for a CPU. Built so far:

- ``denoiser``: body and hand Transformer experts with music cross-attention, body features injected into
  the hand branch, genre + step FiLM (Fig. 3-4, eq. 3-4), temporal downsampling for fewer tokens;
- ``schedule``: cosine schedule and DDIM for an x0-predicting model (eq. 5, 14);
- ``sampling``: classifier-free guidance, inpainting by joint / time masks (eq. 15), long-term sampling of
  overlapping windows as one batch with a cross-faded assembly;
- ``losses``: eq. 5-8 (simple, FK joints, velocity, foot contact);
- ``mtl``: fixed / Nash-MTL / Aligned-MTL loss weighting (Algorithms 1-2).

Not built yet: the training loop and run directory, the music-tower features, POPDG's options, the
``dancesearch generate`` command and a trained checkpoint (see issue 14).
"""
