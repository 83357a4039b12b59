"""Noise augmentation on cached log-mels: does mixing mel powers match mixing waveforms?"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from emovox.realtime.settings import VadSettings, WindowSettings
from emovox.train.corpora import read_audio
from emovox.train.features import utterance_windows
from emovox.train.fit import TrainSettings, mix_noise, white_noise_power
from emovox.train.model import FrontendSpec, LogMel

from .conftest import ravdess

FRONTEND = FrontendSpec()
ANGRY, SAD = "03-01-05-02-01-01-01", "03-01-04-02-02-01-02"


def speech_windows() -> torch.Tensor:
    audio = np.concatenate([read_audio(ravdess(ANGRY)), read_audio(ravdess(SAD))])
    return torch.from_numpy(utterance_windows(audio, VadSettings(), WindowSettings()))


def always(snr_db: float) -> TrainSettings:
    return replace(TrainSettings(), noise_probability=1.0, noise_snr_db=(snr_db, snr_db))


def mel_power(logmel: torch.Tensor) -> torch.Tensor:
    return torch.exp(logmel) - FRONTEND.log_floor


def test_mel_domain_mix_matches_the_waveform_mix() -> None:
    """Adding the mel powers of speech and noise is what the front end gives for speech + noise."""
    front_end = LogMel(FRONTEND)
    speech = speech_windows()[:1]
    noise = torch.randn(1, speech.shape[1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        clean, noise_logmel = front_end(speech), front_end(noise)
    mixed = mix_noise(clean, always(5.0), torch.Generator().manual_seed(0), mel_power(noise_logmel),
                      FRONTEND.log_floor)  # one window: white noise, this very noise
    gain = mel_power(clean).mean() / mel_power(noise_logmel).mean() / 10 ** 0.5
    with torch.no_grad():
        truth = front_end(speech + gain.sqrt() * noise)
    error = (mixed - truth).abs().median()
    assert error < 0.05 * (truth - clean).abs().median(), (float(error), float((truth - clean).abs().median()))
    assert float(mel_power(mixed).mean() / mel_power(clean).mean()) == pytest.approx(1 + 10 ** -0.5, rel=1e-3)


def test_snr_sets_the_noise_power_and_babble_comes_from_other_windows() -> None:
    with torch.no_grad():
        clean = LogMel(FRONTEND)(speech_windows())
    white = white_noise_power(FRONTEND, clean.shape[2], seed=0)
    for snr_db in (0.0, 20.0):
        mixed = mix_noise(clean, always(snr_db), torch.Generator().manual_seed(3), white, FRONTEND.log_floor)
        added = mel_power(mixed).mean(dim=(1, 2)) / mel_power(clean).mean(dim=(1, 2)) - 1
        assert torch.allclose(added, torch.full_like(added, 10 ** (-snr_db / 10)), rtol=1e-3)
    # a batch of one window has no other window to babble with: white noise only, still at the SNR
    single = mix_noise(clean[:1], always(0.0), torch.Generator().manual_seed(3), white, FRONTEND.log_floor)
    assert float(mel_power(single).mean() / mel_power(clean[:1]).mean()) == pytest.approx(2.0, rel=1e-3)


def test_white_noise_is_flat_across_mel_bands() -> None:
    """Slaney filters have equal area: white noise has about the same power in every band."""
    white = white_noise_power(FRONTEND, 125, seed=0)
    per_band = white.mean(dim=(0, 2))
    assert white.shape == (128, FRONTEND.n_mels, 125)
    assert float(per_band.max() / per_band.min()) < 2.0


def test_probability_zero_leaves_every_window_clean() -> None:
    with torch.no_grad():
        clean = LogMel(FRONTEND)(speech_windows())
    white = white_noise_power(FRONTEND, clean.shape[2], seed=0)
    settings = replace(TrainSettings(), noise_probability=0.0)
    assert torch.equal(mix_noise(clean, settings, torch.Generator().manual_seed(0), white, FRONTEND.log_floor),
                       clean)
