"""Per-corpus output heads: a shared classifier plus one offset per corpus, RAVDESS's kept.

"Frustratingly easy domain adaptation" (Daume III 2007) at the output layer: each training window's
logits are the shared head's plus its own corpus's offset head. The corpora label emotions their own
way (TurEV's calm stands where RAVDESS says neutral, TESS's two actresses exaggerate, nEMO and EMOVO
are other languages); with one head, every corpus's convention pulls on the same boundaries. With
offsets, what only one corpus means is learnt by its offset, and the shared head and backbone keep
what the corpora agree on. The benchmark, and the voices the product is judged on, are RAVDESS's
kind of speech: the network that training returns classifies with the shared head plus RAVDESS's
offset, folded into one linear layer, so the checkpoint, the exported graph and the runtime are
exactly those of a plain network.

The offsets exist only during training: they are never part of a checkpoint or an exported graph.
"""
from __future__ import annotations

import torch
from torch import nn

KEPT_CORPUS = "ravdess"
"""The corpus whose offset the returned network keeps: the benchmark's."""


class CorpusOffsets(nn.Module):
    """One linear head per corpus, added to the shared head's logits of that corpus's windows."""

    def __init__(self, embedding: int, n_classes: int, n_corpora: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_corpora, n_classes, embedding))
        self.bias = nn.Parameter(torch.zeros(n_corpora, n_classes))

    def forward(self, embedding: torch.Tensor, corpus: torch.Tensor) -> torch.Tensor:
        """[B, classes]: each window's offset from its own corpus's head (zero at the start, so
        training begins where a plain network's does)."""
        return torch.einsum("bce,be->bc", self.weight[corpus], embedding) + self.bias[corpus]

    def fold_into(self, head: nn.Linear, corpus: int) -> None:
        """Add one corpus's offset to ``head`` in place: ``head`` then classifies as shared + offset."""
        with torch.no_grad():
            head.weight += self.weight[corpus].to(head.weight.device)
            head.bias += self.bias[corpus].to(head.bias.device)


def kept_corpus_index(corpus_names: list[str] | None) -> int:
    """Where RAVDESS sits among the training corpora; an error if it is not one of them, since the
    returned network's head would then be one that no window trained as a whole."""
    if not corpus_names or KEPT_CORPUS not in corpus_names:
        raise ValueError(f"corpus_heads keeps {KEPT_CORPUS}'s offset, so it needs {KEPT_CORPUS} among the "
                         f"training corpora (got {corpus_names})")
    return corpus_names.index(KEPT_CORPUS)
