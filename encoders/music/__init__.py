"""Music representation: decoding, the 35-d FineDance / CustomDancer features at 30 fps, tempo and beats."""

MUSIC_FEATURE_DIM = 35
"""Width of the music features (``features.py`` says what each is). Here, in the package's light ``__init__``, so
that modules that only need the width (the retrieval model, the generator) do not import librosa with it."""
