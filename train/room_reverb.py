"""A reverberant room: convolved with waveforms for the robustness benchmark, emulated on cached
log-mels for training.

The room is statistical (Schroeder): a direct path and a late tail of Gaussian noise whose power
falls by 60 dB over the reverberation time RT60, at a direct-to-reverberant energy ratio (DRR).
Its energy reaches the microphone at delay tau with density E(tau) = ratio * k * exp(-k tau),
k = 6 ln(10) / RT60, so a frame's mel power is its own (direct) plus the earlier frames' powers
weighted by the tail energy that lands at their lag: the incoherent sum that holds once the tail
is noise-like. ``reverberant_logmel`` does that per window, so no waveform has to be cached;
tests/test_room_reverb.py checks it against the convolved waveform.
"""
from __future__ import annotations

import numpy as np
import torch

from emovox.train.model import FrontendSpec, mel_power

DECAY_PER_RT60 = 6 * np.log(10)
"""Power decay over one reverberation time: 60 dB, in nepers of power."""
ROOM_VARIETY = {"rt60_s": (0.2, 1.0), "drr_db": (-8.0, 10.0)}
"""Training draws each window's room from these ranges: from a furnished office to a bare hall,
from a laptop at arm's length to a talker across the room."""
BENCHMARK_RT60_S = (0.3, 0.6, 0.9)
BENCHMARK_ROOM_M3, BENCHMARK_DISTANCE_M = 60.0, 1.0
"""The benchmark's rooms: a 60 m3 office whose RT60 is 0.3, 0.6 or 0.9 s, the talker 1 m from the
microphone (a desk microphone, a laptop)."""


def direct_to_reverberant_db(rt60_s: float, volume_m3: float, distance_m: float) -> float:
    """DRR of a talker ``distance_m`` from the microphone: (critical distance / distance)^2, the
    critical distance 0.057 sqrt(V / RT60) m (Sabine, an omnidirectional source)."""
    return float(10 * np.log10(0.057 ** 2 * volume_m3 / rt60_s / distance_m ** 2))


def room_impulse_response(rt60_s: float, drr_db: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A unit direct path followed by an exponentially decaying Gaussian tail, ``rt60_s`` long,
    carrying 10^(-drr_db / 10) of the direct path's energy."""
    n = np.arange(1, int(rt60_s * rate))
    if not len(n):
        raise ValueError(f"an RT60 of {rt60_s} s leaves no tail at {rate} Hz")
    tail = rng.standard_normal(len(n)) * np.exp(-DECAY_PER_RT60 / 2 * n / (rt60_s * rate))
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail ** 2))
    return np.concatenate([[1.0], tail])


def reverberate(audio: np.ndarray, rt60_s: float, drr_db: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` as a microphone in that room would record it (same length: the tail after the last
    sample is cut, as a recording that stops would cut it)."""
    from scipy.signal import fftconvolve

    return fftconvolve(audio, room_impulse_response(rt60_s, drr_db, rate, rng))[:len(audio)].astype(np.float32)


def frame_lag_weights(rt60_s: torch.Tensor, drr_db: torch.Tensor, frames: int, frontend: FrontendSpec) -> torch.Tensor:
    """[b, frames] the share of a frame's power that lands ``lag`` frames later: the direct path (1)
    plus the tail within half a hop at lag 0, the tail within a hop of each later lag."""
    hop_s = frontend.hop_length / frontend.sample_rate
    edges = (torch.arange(frames + 1, dtype=torch.float64) - 0.5).clamp(min=0) * hop_s  # frames + 1
    remaining = torch.exp(-DECAY_PER_RT60 * edges[None, :] / rt60_s.double()[:, None])  # tail energy left
    weights = 10 ** (-drr_db.double()[:, None] / 10) * (remaining[:, :-1] - remaining[:, 1:])
    weights[:, 0] += 1.0
    return weights.float()


def reverberant_logmel(logmel: torch.Tensor, rt60_s: torch.Tensor, drr_db: torch.Tensor,
                       frontend: FrontendSpec) -> torch.Tensor:
    """Log-mels [b, n_mels, frames] as the rooms (``rt60_s``, ``drr_db`` [b]) would record them:
    each frame's mel power plus the earlier frames' at their lags' tail weights."""
    frames = logmel.shape[2]
    weights = frame_lag_weights(rt60_s, drr_db, frames, frontend)  # b, frames
    lag = torch.arange(frames)[:, None] - torch.arange(frames)[None, :]  # [to, from]
    mixing = torch.where(lag >= 0, weights[:, lag.clamp(min=0)], torch.zeros(()))  # b, to, from
    speech = mel_power(logmel, frontend.log_floor)
    return torch.log(torch.bmm(speech, mixing.transpose(1, 2)) + frontend.log_floor)


def random_room(batch: torch.Tensor, probability: float, generator: torch.Generator,
                frontend: FrontendSpec) -> torch.Tensor:
    """Put a share (``probability``) of the log-mel windows [b, n_mels, frames] in rooms whose
    RT60 and DRR are drawn per window from ``ROOM_VARIETY``."""
    b = batch.shape[0]
    on = torch.rand(b, generator=generator) < probability
    rt60_s, drr_db = ((lo + (hi - lo) * torch.rand(b, generator=generator)) for lo, hi in ROOM_VARIETY.values())
    return torch.where(on[:, None, None], reverberant_logmel(batch, rt60_s, drr_db, frontend), batch)
