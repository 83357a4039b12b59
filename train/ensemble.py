"""Several trained backbones behind one log-mel front end, exported as one file.

Averaging the calibrated probabilities of separately trained networks is the one lever that has
held up across draws (experiments #27, #35, #37); one file keeps the runtime's contract: one input,
one output, the same metadata. Each member keeps its own temperature; the ensemble's output is the
log of the members' mean probability, so ``EmotionModel``'s softmax over it (at temperature 1)
gives that mean exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from emovox.train.model import CNNLSTM, EmotionModel, FrontendSpec

PROBABILITY_FLOOR = 1e-12
"""Keeps the log finite where a member's softmax underflows to 0."""


class EnsembleBackbone(nn.Module):
    """Log-mel [B, n_mels, T] -> log of the members' mean softmax(logits / T_member)."""

    def __init__(self, members: list[CNNLSTM], temperatures: list[float]) -> None:
        super().__init__()
        if not members or len(members) != len(temperatures):
            raise ValueError("an ensemble needs one temperature per member, and at least one member")
        if any(not t > 0 for t in temperatures):
            raise ValueError(f"member temperatures must be positive, got {temperatures}")
        self.members = nn.ModuleList(members)
        self.register_buffer("temperatures", torch.tensor(temperatures, dtype=torch.float32))

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        probs = [torch.softmax(member(logmel) / self.temperatures[i], dim=-1)
                 for i, member in enumerate(self.members)]
        return torch.log(torch.stack(probs).mean(dim=0).clamp(min=PROBABILITY_FLOOR))


def ensemble_model(spec: FrontendSpec, members: list[CNNLSTM], temperatures: list[float]) -> EmotionModel:
    """The members behind one front end: the graph that is exported, its output the mean probability."""
    n_classes = members[0].head.out_features
    model = EmotionModel(spec, n_classes)
    model.backbone = EnsembleBackbone(members, temperatures)
    return model.eval()
