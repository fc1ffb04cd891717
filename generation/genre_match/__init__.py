"""Genre-matching Score (FineNet sec. 4.4, eq. 3-4): a music style encoder on log-mel windows and an
AGCN-like dance genre encoder on the body skeleton, trained with the cosine loss on genre-matched /
mismatched pairs. ``GSScorer.from_pretrained(models/gs)`` scores; ``train.train_gs_on_catalog`` trains;
``dancesearch gs train | reference``."""
from .mel import MelConfig, log_mel
from .model import GenreMatcher, GSModelConfig, cosine_pair_loss
from .scorer import DEFAULT_GS_DIR, GSScorer
from .train import GSTrainConfig, load_gs_run, save_gs_run, train_gs, train_gs_on_catalog

__all__ = ["MelConfig", "log_mel", "GenreMatcher", "GSModelConfig", "cosine_pair_loss", "GSScorer", "DEFAULT_GS_DIR",
           "GSTrainConfig", "load_gs_run", "save_gs_run", "train_gs", "train_gs_on_catalog"]
