"""The generative motion representation (issue 13): 319 values per frame at 30 fps.

- ``layout``: the FineDance / EDGE column layout and named slices (body vs hands, root, contacts);
- ``canonical``: the canonical frame (first root at the origin facing +z) and its inverse;
- ``codec``: ``encode(MotionRecord) -> (T, 319)``, ``decode((T, 319)) -> MotionRecord`` (FK positions);
- ``normalizer``: per-dimension statistics fitted on training windows, saved with a model.
"""
from .canonical import CanonicalFrame
from .codec import ContactConfig, NotGenerativeError, canonicalise_features, decode, encode
from .layout import FEATURE_DIM, FPS, LAYOUT, REPRESENTATION_ID, FeatureLayout
from .normalizer import Normalizer

__all__ = ["CanonicalFrame", "ContactConfig", "FEATURE_DIM", "FPS", "FeatureLayout", "LAYOUT", "NotGenerativeError",
           "Normalizer", "REPRESENTATION_ID", "canonicalise_features", "decode", "encode"]
