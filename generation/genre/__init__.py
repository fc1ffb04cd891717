"""Free-form text -> genre (GCDance eq. 1-2): which genre a description asks for, and how sure that is.

The generator is conditioned on a genre; users type descriptions ("a sharp popping sequence with isolated
arm hits", "something slow and sad to a violin"). ``GenreClassifier`` maps text to the catalog's genres
with a frozen sentence backbone and a small head trained with binary cross-entropy on the corpus captions.
"""
from .classifier import GenreClassifier, GenreClassifierConfig, GenrePrediction
from .train import train_genre_classifier

__all__ = ["GenreClassifier", "GenreClassifierConfig", "GenrePrediction", "train_genre_classifier"]
