"""The seed systems' feature vector and 1-D CNN, rebuilt from their published description.

The seed projects classified a 162-value utterance vector: zero-crossing rate,
12 chroma, 20 MFCC means, RMS and 128 mel-band means, from 2.5 s of audio read
at a 0.6 s offset, with a Keras Conv1D stack (256-256-128-64, kernel 5,
max-pooling, dropout). ``ser-bench`` times this pipeline as the baseline.
"""
from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

SEED_SAMPLE_RATE = 16000
SEED_FEATURES = 162


def seed_features(audio: np.ndarray, sample_rate: int = SEED_SAMPLE_RATE) -> np.ndarray:
    """The 162-value vector: ZCR, chroma (12), MFCC (20), RMS, mel (128), each averaged over time."""
    stft = np.abs(librosa.stft(audio))
    parts = [
        np.mean(librosa.feature.zero_crossing_rate(y=audio).T, axis=0),
        np.mean(librosa.feature.chroma_stft(S=stft, sr=sample_rate).T, axis=0),
        np.mean(librosa.feature.mfcc(y=audio, sr=sample_rate, n_mfcc=20).T, axis=0),
        np.mean(librosa.feature.rms(y=audio).T, axis=0),
        np.mean(librosa.feature.melspectrogram(y=audio, sr=sample_rate).T, axis=0),
    ]
    vector = np.concatenate(parts).astype(np.float32)
    assert vector.shape == (SEED_FEATURES,)
    return vector


class SeedCNN(nn.Module):
    """Conv1D 256-256-128-64 (kernel 5, same padding) with max-pooling and dropout, then dense layers."""

    def __init__(self, n_classes: int = 8) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, pool: bool, dropout: float) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, 5, padding=2), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool1d(5, stride=2, padding=2))
            if dropout:
                layers.append(nn.Dropout(dropout))
            return layers

        self.features = nn.Sequential(*block(1, 256, True, 0.0), *block(256, 256, True, 0.0),
                                      *block(256, 128, True, 0.2), *block(128, 64, True, 0.0))
        length = SEED_FEATURES
        for _ in range(4):
            length = (length - 1) // 2 + 1
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * length, 32), nn.ReLU(), nn.Dropout(0.3),
                                  nn.Linear(32, n_classes))

    def logits(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(vectors[:, None, :]))

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(vectors), dim=-1)
