"""The CNN-LSTM, with its log-mel front end inside the model so that export carries it."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dataclasses import dataclass

import librosa


@dataclass(frozen=True)
class FrontendSpec:
    """Log-mel settings; fixed for a trained model and recorded in its metadata."""

    sample_rate: int = 16000
    win_length: int = 400  # 25 ms
    hop_length: int = 320  # 20 ms: halves the DFT, the largest cost per window
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    log_floor: float = 1e-5

    @property
    def n_fft(self) -> int:
        return self.win_length

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        return 1 + (n_samples - self.win_length) // self.hop_length


def mel_filterbank(spec: FrontendSpec) -> np.ndarray:
    """Slaney mel filters [n_mels, n_bins] (librosa's default), float32."""
    return librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels,
                               fmin=spec.fmin, fmax=spec.fmax).astype(np.float32)


def dft_basis(spec: FrontendSpec) -> np.ndarray:
    """Hann-windowed real DFT as conv kernels: rows are cos then sin, fp16-rounded.

    The basis is rounded to float16 because files once stored it so, to stay under 1 MB: the
    features every model here was trained on. Exported files compute the exact DFT in two stages
    instead (``factored_frontend``), a few thousandths away in log-mel.
    """
    n = np.arange(spec.win_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / spec.win_length)
    k = np.arange(spec.n_bins)[:, None]
    phase = 2 * np.pi * k * n[None, :] / spec.n_fft
    basis = np.concatenate([np.cos(phase) * window, -np.sin(phase) * window])
    return basis.astype(np.float16).astype(np.float32)


class LogMel(nn.Module):
    """Waveform [B, N] -> log-mel [B, n_mels, frames]; fixed, never trained."""

    def __init__(self, spec: FrontendSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("dft", torch.from_numpy(dft_basis(spec))[:, None, :])
        self.register_buffer("melfb", torch.from_numpy(mel_filterbank(spec)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        frames = nn.functional.conv1d(wave[:, None, :], self.dft, stride=self.spec.hop_length)
        real, imag = frames[:, : self.spec.n_bins], frames[:, self.spec.n_bins :]
        power = real * real + imag * imag
        return torch.log(torch.matmul(self.melfb, power) + self.spec.log_floor)


def mel_power(logmel: torch.Tensor, log_floor: float) -> torch.Tensor:
    """The mel power a log-mel came from (``LogMel`` adds the floor before the log): the domain in
    which noise and speech add, for the augmentations that work on cached log-mels."""
    return (torch.exp(logmel) - log_floor).clamp(min=0)


def real_frames(logmel: torch.Tensor, log_floor: float) -> torch.Tensor:
    """[B, 1, T] 1.0 where a frame holds sound, 0.0 where every band sits near the log floor (the zero
    padding of a short utterance's window, a gated pause)."""
    return (logmel.amax(dim=1, keepdim=True) > math.log(log_floor) + 1).to(logmel.dtype)


def subtract_window_mean(logmel: torch.Tensor, log_floor: float) -> torch.Tensor:
    """Each mel band minus its mean over the window's real frames: cepstral mean normalisation in
    the log-mel domain. It removes the long-term spectrum that a voice, a microphone or a line
    imposes on every frame, and the level, and keeps how the spectrum moves. Frames at the log
    floor (the zero padding of a short utterance's window) are left out of the mean."""
    real = real_frames(logmel, log_floor)
    mean = (logmel * real).sum(dim=2, keepdim=True) / real.sum(dim=2, keepdim=True).clamp(min=1)
    return logmel - mean


def _conv_block(c_in: int, c_out: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(pool),
    )


class CNNLSTM(nn.Module):
    """Log-mel [B, n_mels, T] -> class logits.

    Per-mel batch norm learns the input statistics from training speakers only;
    three conv blocks pool 8x in frequency and 4x in time; a bidirectional
    LSTM reads the 80 ms steps; attention pooling lets emotional peaks outweigh pauses.
    ``window_mean``: subtract each window's per-band mean first (``subtract_window_mean``, no
    weights: a checkpoint loads either way, so the setting travels in the recipe's metadata).
    """

    def __init__(self, n_mels: int, n_classes: int, channels: tuple[int, int, int] = (16, 32, 48),
                 hidden: int = 64, dropout: float = 0.3, window_mean: bool = False,
                 log_floor: float = FrontendSpec.log_floor) -> None:
        super().__init__()
        self.window_mean, self.log_floor = window_mean, log_floor
        self.input_norm = nn.BatchNorm1d(n_mels)
        c1, c2, c3 = channels
        self.convs = nn.Sequential(_conv_block(1, c1, (2, 2)), _conv_block(c1, c2, (2, 2)),
                                   _conv_block(c2, c3, (2, 1)))
        self.lstm = nn.LSTM(c3 * (n_mels // 8), hidden, batch_first=True, bidirectional=True)
        self.attention = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, n_classes)

    def embed(self, logmel: torch.Tensor) -> torch.Tensor:
        """The attention-pooled LSTM state [B, 2 * hidden] that the head classifies."""
        if self.window_mean:
            logmel = subtract_window_mean(logmel, self.log_floor)
        x = self.convs(self.input_norm(logmel)[:, None])  # B, C, F, T
        b, c, f, t = x.shape
        x = x.permute(0, 3, 1, 2).reshape(b, t, c * f)
        h, _ = self.lstm(x)
        weights = torch.softmax(self.attention(h), dim=1)
        return (weights * h).sum(dim=1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(embedding))

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(logmel))


class EmotionModel(nn.Module):
    """Waveform -> class probabilities: exactly what the runtime's ONNX session computes."""

    def __init__(self, spec: FrontendSpec, n_classes: int, window_mean: bool = False) -> None:
        super().__init__()
        self.frontend = LogMel(spec)
        self.backbone = CNNLSTM(spec.n_mels, n_classes, window_mean=window_mean, log_floor=spec.log_floor)
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.backbone(self.frontend(wave)) / self.temperature, dim=-1)


def model_from_metadata(meta: dict) -> EmotionModel:
    """An untrained ``EmotionModel`` shaped as a shipped file's metadata says (front end, labels,
    training-recipe switches that change the graph but hold no weights)."""
    return EmotionModel(FrontendSpec(**meta["frontend"]), len(meta["labels"]),
                        window_mean=bool(meta.get("train", {}).get("window_mean", False)))
