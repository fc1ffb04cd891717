"""Long dances stitched from 4-s candidates (FineNet's GCRM, eq. 5-6), retrieval-augmented.

- ``gcrm``: the selection rule (alpha GS + beta CS, greedy; several dances from different first choices);
- ``junction``: pose descriptors for CS, placing a segment after the previous one, the 5-frame cut and
  linear interpolation at each junction;
- ``candidates``: diffusion samples (one per seed) and catalog windows retrieved by text and music;
- ``pipeline.GCRMPipeline``: ``from_pretrained(generator, gs, home)`` and ``__call__`` -> dances with a
  per-segment provenance list, progress and cancel hooks.
"""
from .candidates import Candidate, CatalogCandidates, DiffusionCandidates
from .gcrm import ALPHA, BETA, Selection, select, select_many
from .junction import CUT, join, place_after, pose_descriptor
from .pipeline import GCRMPipeline, GenerationCancelled, StitchedDance, StitchResult

__all__ = ["Candidate", "CatalogCandidates", "DiffusionCandidates", "ALPHA", "BETA", "Selection", "select",
           "select_many", "CUT", "join", "place_after", "pose_descriptor", "GCRMPipeline", "GenerationCancelled",
           "StitchedDance", "StitchResult"]
