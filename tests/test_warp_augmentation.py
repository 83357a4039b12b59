"""Pitch shift and time stretch on cached log-mels: do they match what the waveform would give?"""
from __future__ import annotations

from dataclasses import replace

import librosa
import numpy as np
import torch

from emovox.train.corpora import read_audio
from emovox.train.fit import TrainSettings, random_warp, warp_logmel
from emovox.train.model import FrontendSpec, LogMel

from .conftest import ravdess

FRONTEND = FrontendSpec()
SAMPLE_RATE = FRONTEND.sample_rate
WINDOW = 40_000  # 2.5 s


def logmel(wave: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return LogMel(FRONTEND)(torch.from_numpy(wave.astype(np.float32))[None])


def factors(*values: float) -> torch.Tensor:
    return torch.tensor(values)


def test_speed_perturbation_on_logmels_matches_the_resampled_waveform() -> None:
    """Playing a recording 10 % faster or slower scales frequency and time alike: warping both axes
    of its log-mel by that factor lands close to the log-mel of the resampled waveform, much closer
    than stretching time alone."""
    speech = read_audio(ravdess("03-01-05-02-01-01-01"))[SAMPLE_RATE // 2:][:WINDOW]
    clean = logmel(speech)
    for speed in (0.9, 1.1):
        played = librosa.resample(speech, orig_sr=SAMPLE_RATE * speed, target_sr=SAMPLE_RATE)[:WINDOW]
        truth = logmel(np.pad(played, (0, WINDOW - len(played))))
        inside = (slice(None), slice(4, 60), slice(0, int(clean.shape[2] / max(speed, 1.0)) - 2))

        def error(candidate: torch.Tensor) -> float:
            return float((candidate - truth)[inside].abs().median())

        both = error(warp_logmel(clean, factors(speed), factors(speed), FRONTEND))
        time_only = error(warp_logmel(clean, factors(1.0), factors(speed), FRONTEND))
        assert both < 0.5 * time_only, (speed, both, time_only)


def test_a_tone_moves_to_the_band_of_its_shifted_frequency() -> None:
    t = np.arange(WINDOW) / SAMPLE_RATE
    tone = logmel(0.1 * np.sin(2 * np.pi * 1000 * t))
    up = 2 ** (4 / 12)  # four semitones: 1000 -> 1260 Hz
    shifted = warp_logmel(tone, factors(up), factors(1.0), FRONTEND)
    expected = logmel(0.1 * np.sin(2 * np.pi * 1000 * up * t))
    middle = slice(10, -10)
    assert torch.equal(shifted[0, :, middle].mean(dim=1).argmax(), expected[0, :, middle].mean(dim=1).argmax())
    assert shifted[0, :, middle].mean(dim=1).argmax() > tone[0, :, middle].mean(dim=1).argmax()


def test_time_stretch_moves_an_onset_and_fills_with_silence() -> None:
    floor = float(np.log(FRONTEND.log_floor))
    frames = FRONTEND.n_frames(WINDOW)
    batch = torch.full((1, FRONTEND.n_mels, frames), floor)
    batch[:, :, 60:] = 0.0  # a sound starts at frame 60 and lasts to the end
    faster = warp_logmel(batch, factors(1.0), factors(1.2), FRONTEND)
    onset = int((faster[0, 0] > floor / 2).nonzero()[0])
    assert onset == 50  # 60 / 1.2
    assert torch.allclose(faster[0, :, -5:], torch.tensor(floor))  # read past the window's end: silence


def test_unit_factors_leave_the_window_unchanged_and_draws_follow_the_generator() -> None:
    batch = logmel(read_audio(ravdess("03-01-04-02-02-01-02"))[:WINDOW]).repeat(3, 1, 1)
    assert torch.allclose(warp_logmel(batch, factors(1, 1, 1), factors(1, 1, 1), FRONTEND), batch, atol=1e-4)
    settings = replace(TrainSettings(), pitch_shift_semitones=2.0, tempo_change=0.1)
    first, second = (random_warp(batch, settings, torch.Generator().manual_seed(5), FRONTEND) for _ in range(2))
    assert torch.equal(first, second)
    assert not torch.allclose(first[0], first[1])  # each window draws its own factors


def test_speed_change_warps_both_axes_by_one_factor_per_window() -> None:
    """``--speed-change`` draws one factor per window and applies it to frequency and time alike."""
    batch = logmel(read_audio(ravdess("03-01-04-02-02-01-02"))[:WINDOW]).repeat(4, 1, 1)
    settings = replace(TrainSettings(), speed_change=0.05)
    warped = random_warp(batch, settings, torch.Generator().manual_seed(7), FRONTEND)
    draws = torch.Generator().manual_seed(7)
    torch.rand(4, generator=draws), torch.rand(4, generator=draws)  # the (unused) pitch and tempo draws
    speed = 1 + (torch.rand(4, generator=draws) * 2 - 1) * 0.05
    assert ((speed >= 0.95) & (speed <= 1.05)).all() and len(set(speed.tolist())) == 4
    assert torch.allclose(warped, warp_logmel(batch, speed, speed, FRONTEND))
