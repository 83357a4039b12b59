"""Several trained backbones behind one log-mel front end, exported as one file.

Averaging the calibrated probabilities of separately trained networks is the one lever that has
held up across draws (experiments #27, #35, #37); one file keeps the runtime's contract: one input,
one output, the same metadata. Each member keeps its own temperature; the ensemble backbone outputs
the log of the members' mean probability, so ``EmotionModel``'s softmax over it gives that mean at
temperature 1, and recalibrates it at the ensemble's own (an average of calibrated members is
under-confident).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from emovox.train.calibration import softmax
from emovox.train.model import CNNLSTM, EmotionModel, FrontendSpec, model_from_metadata

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


def ensemble_model(spec: FrontendSpec, members: list[CNNLSTM], temperatures: list[float],
                   temperature: float = 1.0) -> EmotionModel:
    """The members behind one front end: the graph that is exported. At ``temperature`` 1 its output is
    the members' mean probability; the ensemble's own fitted temperature recalibrates that mean."""
    n_classes = members[0].head.out_features
    model = EmotionModel(spec, n_classes)
    model.backbone = EnsembleBackbone(members, temperatures)
    model.temperature.fill_(temperature)
    return model.eval()


def model_members(model: EmotionModel) -> list[nn.Module]:
    """The backbones an exported graph holds: an ensemble's members, or the one backbone."""
    backbone = model.backbone
    return list(backbone.members) if isinstance(backbone, EnsembleBackbone) else [backbone]


def combined_logits(member_logits: list[np.ndarray], temperatures: list[float]) -> np.ndarray:
    """Window logits whose softmax is what the graph outputs: one member's logits over its temperature,
    or the log of the members' mean tempered probability (as ``EnsembleBackbone`` computes it)."""
    if len(member_logits) == 1:
        return member_logits[0] / temperatures[0]
    probs = np.mean([softmax(logits, t) for logits, t in zip(member_logits, temperatures)], axis=0)
    return np.log(np.clip(probs, PROBABILITY_FLOOR, None))


def _shaped(backbone: CNNLSTM, network: dict | None) -> CNNLSTM:
    """``backbone`` itself where the metadata gives no ``network`` (files shipped before #50: the default
    shape), else an untrained backbone of that shape with the same graph switches."""
    if network is None:
        return backbone
    return CNNLSTM(backbone.input_norm.num_features, backbone.head.out_features, channels=tuple(network["channels"]),
                   hidden=int(network["hidden"]), window_mean=backbone.window_mean, log_floor=backbone.log_floor)


def shipped_model(meta: dict, weights: Path) -> EmotionModel:
    """The PyTorch model a shipped file was exported from: shaped as its metadata says, an ensemble's
    (``members``) or one network's (``model.model_from_metadata``), with ``ser-train ship``'s ``.pt``
    ``weights`` in its backbone and the file's temperature, as the exported graph computes it."""
    temperature = float(meta.get("temperature", 1.0))
    if "members" in meta:
        members = [_shaped(model_from_metadata({**meta, "train": member["train"]}).backbone, member.get("network"))
                   for member in meta["members"]]
        model = ensemble_model(FrontendSpec(**meta["frontend"]), members,
                               [float(member["temperature"]) for member in meta["members"]], temperature)
    else:
        model = model_from_metadata(meta)
        model.backbone = _shaped(model.backbone, meta.get("network"))
        model.temperature.fill_(temperature)
    model.backbone.load_state_dict(torch.load(weights))
    return model.eval()
