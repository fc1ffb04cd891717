"""Procedural demo corpus: music-synchronised SMPL-X dances with TD-Data style tags and captions.

Why procedural: the product needs a corpus it can ship, test and train its demo model on without
licensed mocap. Every attribute a caption states (genre, tempo, energy, body-part emphasis, spatial
pattern, fluidity, mood, signature moves) is *produced* by the generator, so it is visible in the
motion or audible in the music, and retrieval by description is a real (learnable) task.

Modules, one job each:
- ``taxonomy``: genres (tempo range, meter, swing, scales, drums, timbre, vocabulary, priors) and tag values.
- ``rig``: named body controls (degrees) -> SMPL-X 52 local rotations; hand shapes.
- ``primitives``: parameterised movement primitives -> keyframes on the beat grid.
- ``choreographer``: 8-count phrase assembly, dancer style, easing, turns, travel, grounding (root height and
  travel from leg FK with the feet planted: ``encoders.motion.grounding``).
- ``music``: the synthesiser (drums, bass, harmony, melody) on the same beat grid.
- ``captions``: tags -> short search-like captions; held-out phrasings for the test split.
- ``plan``: per-clip attribute plan (genre balance, stratified attributes, splits, dancers).
- ``corpus``: generates and writes the folder; ``datasheet``: DATASHEET.md + tempo histogram.
"""
