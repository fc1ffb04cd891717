"""Genre-swapped music: the training augmentation that makes the genre prompt, not the music, decide the style.

Why: in a corpus where every genre has its own music (the procedural demo corpus; FineDance mostly too), a
denoiser trained only on matching pairs learns to read the genre off the music and to ignore the prompt; the
first shipped model followed the requested genre in 17.6% of the control test's windows (music fixed, genre
changed; ``docs/results/generation.md``). Giving a share of each batch another genre's music, while the motion
and the genre label stay, teaches the model what to do when the two disagree: dance the label's genre. Matching
pairs, the rest of the batch, still teach it to move on the music's beat.
"""
from __future__ import annotations

import torch


def swap_music(music: torch.Tensor, genre: torch.Tensor, probability: float,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each window's music, with ``probability``, by the music of a batch window of another genre.

    ``music`` (B, T, D), ``genre`` (B,) genre indices. Returns the new music and a (B,) bool mask of the windows
    that were swapped; a window whose batch holds no other genre keeps its music.
    """
    b = len(genre)
    if probability <= 0 or b < 2:
        return music, torch.zeros(b, dtype=torch.bool)
    if not 0 <= probability <= 1:
        raise ValueError(f"music swap probability must be in [0, 1], got {probability}")
    other = genre[None, :] != genre[:, None]                         # (B, B): j has another genre than i
    wanted = torch.rand(b, generator=generator) < probability
    swapped = wanted & other.any(1)
    scores = torch.rand(b, b, generator=generator).masked_fill(~other, -1.0)
    partner = scores.argmax(1)                                       # a uniform pick among the other genres
    index = torch.where(swapped, partner, torch.arange(b))
    return music[index], swapped
