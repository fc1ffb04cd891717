"""Default size and seed of the demo corpus, in a module light enough for `--help` to import."""

DEFAULT_CLIPS = 360           # 18 genres x 20 clips of 12 s (1.2 h): generation + ingestion within 3 min on 2 cores
DEFAULT_SEED = 0
