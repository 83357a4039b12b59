"""The phone-line condition of the robustness benchmark: what it keeps and what it removes."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the robustness benchmark needs the [train] extra")

from emovox.train.phone_line import mu_law_round_trip, telephone_band  # noqa: E402

RATE = 16000


def tone(hz: float, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def gain_db(hz: float) -> float:
    """Power out over power in, past the filter's first 0.2 s (it is causal, like a line)."""
    clean = tone(hz)
    line = telephone_band(clean)
    assert line.shape == clean.shape and line.dtype == np.float32
    settled = slice(int(0.2 * RATE), None)
    return 10 * np.log10(np.mean(line[settled] ** 2) / np.mean(clean[settled] ** 2))


def test_the_voice_band_passes() -> None:
    for hz in (500, 1000, 2500):
        assert abs(gain_db(hz)) < 1.0, hz


def test_what_a_phone_line_cannot_carry_is_removed() -> None:
    assert gain_db(100) < -20  # mains hum and the lowest voice fundamentals
    assert gain_db(5000) < -40  # above the 4 kHz Nyquist limit of 8 kHz sampling
    assert gain_db(7000) < -40


def test_mu_law_keeps_256_levels_and_small_relative_error() -> None:
    x = np.linspace(-1, 1, 100_001, dtype=np.float32)
    coded = mu_law_round_trip(x)
    assert len(np.unique(coded)) <= 256
    loud = np.abs(x) > 0.01
    assert np.max(np.abs(coded[loud] - x[loud]) / np.abs(x[loud])) < 0.07  # companding: error grows with level
