"""POPDG's three options for the GCDance denoiser (Luo et al., POPDG / PopDanceSet, sec. 4; issue 14).

Each is a ``DenoiserConfig`` switch, off by default; off, the denoiser has the same parameters, draws the same
random numbers at construction and computes the same function as without this package, so runs saved
before it load and sample exactly as before.

- ``learned_variance`` (4.1, iDDPM): a head gives the reverse variance's interpolation v; training adds
  ``TrainConfig.vlb_weight * L_vlb`` (:mod:`.learned_variance`); sampling stays DDIM unless asked for the
  stochastic sampler (``ddim_sample(..., variance="learned")``, ``DancePipeline(..., stochastic=True)``).
- ``ds_attention`` (4.2.1): attention across the 22 body joints in every body block, with the Space
  Augmentation Algorithm (:mod:`.ds_attention`).
- ``alignment_module`` (4.3): convolved dance and music tokens added to the FiLM condition through an MLP
  (:mod:`.alignment`).
"""
from .alignment import AlignmentModule
from .ds_attention import DSAttention, body_parents, joint_levels, saa_matrix, space_augment
from .learned_variance import (VarianceHead, gaussian_nll, model_log_variance, normal_kl, stochastic_step,
                               vlb_loss, vlb_terms)

__all__ = ["AlignmentModule", "DSAttention", "VarianceHead", "body_parents", "gaussian_nll", "joint_levels",
           "model_log_variance", "normal_kl", "saa_matrix", "space_augment", "stochastic_step", "vlb_loss",
           "vlb_terms"]
