"""Genre-controlled music-to-dance diffusion (GCDance, issue 14). Built so far: the multi-task loss
weighting of GCDance section III-B (``mtl``: fixed weights, Nash-MTL, Aligned-MTL)."""
