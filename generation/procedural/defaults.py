"""Default size and seed of the demo corpus, in a module light enough for `--help` to import."""

DEFAULT_CLIPS = 720           # 18 genres x 40 clips of 12 s (2.4 h); sized for generation + ingestion in ~3 min on 2 cores
DEFAULT_SEED = 0
