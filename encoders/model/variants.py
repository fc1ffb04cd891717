"""Names of the model variants (ablation axes), importable without torch so `--help` stays fast."""

TEMPORAL_KINDS: tuple[str, ...] = ("transformer", "lstm", "rnn")
FUSIONS: tuple[str, ...] = ("blend", "add", "mul", "motion", "music")
