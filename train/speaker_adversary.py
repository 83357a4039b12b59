"""Speaker-adversarial training: a speaker classifier behind a gradient reversal.

Domain-adversarial training (Ganin & Lempitsky 2015), with the training speakers as the domains:
a small classifier learns to tell the training speakers apart from the backbone's pooled
embedding, and the reversed gradient pushes the backbone to pool what does not tell them apart.
The product is judged on voices it never heard; what identifies a training voice cannot help
there and may stand in for emotion (a speaker who only ever sounds one way in training).

The classifier exists only during training: it is never part of a checkpoint or an exported graph.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times -strength backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:  # noqa: ANN001 (autograd's ctx)
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return -ctx.strength * grad, None


def ramp(progress: float) -> float:
    """DANN's schedule, 0 -> 1 over training (2 / (1 + e^(-10 p)) - 1): the speaker classifier learns
    while the backbone's features are still forming, before its reversed gradient takes full effect."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


def speaker_indices(speakers: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-window speaker names -> (dense indices [n], number of speakers)."""
    _, index = np.unique(speakers, return_inverse=True)
    return index.astype(np.int64), int(index.max()) + 1


class SpeakerAdversary(nn.Module):
    """An MLP from the pooled embedding to the training speakers, fed through a gradient reversal."""

    def __init__(self, embedding: int, n_speakers: int, hidden: int = 64) -> None:
        super().__init__()
        self.classify = nn.Sequential(nn.Linear(embedding, hidden), nn.ReLU(), nn.Linear(hidden, n_speakers))

    def forward(self, embedding: torch.Tensor, speakers: torch.Tensor, strength: float) -> torch.Tensor:
        """Speaker cross-entropy: minimised by this classifier, maximised (times ``strength``) by the backbone."""
        logits = self.classify(_ReverseGradient.apply(embedding, strength))
        return nn.functional.cross_entropy(logits, speakers)
