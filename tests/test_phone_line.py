"""The phone-line augmentation on cached log-mels: does it do what the benchmark's waveform line does?"""
from __future__ import annotations

import librosa
import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the [train] extra")

import torch  # noqa: E402
from scipy.signal import butter, sosfreqz  # noqa: E402

from emovox.train.corpora import read_audio  # noqa: E402
from emovox.train.model import FrontendSpec, LogMel  # noqa: E402
from emovox.train.phone_line import (BUTTERWORTH_ORDER, MU_LAW_SNR_DB, TELEPHONE_BAND_HZ,  # noqa: E402
                                     TELEPHONE_RATE, band_pass_power_gain, phone_line_logmel,
                                     random_phone_line, telephone_band)

from .conftest import drawn_share_checked, ravdess  # noqa: E402

FRONTEND = FrontendSpec()
FILES = ("03-01-05-02-01-01-01", "03-01-04-02-02-01-02", "03-01-03-01-01-02-05", "03-01-06-02-02-01-08")
"""Angry, sad, happy and fearful; two women, two men."""
LOW, HIGH = (torch.tensor([edge]) for edge in TELEPHONE_BAND_HZ)
DB = 10 / np.log(10)
CENTRES_HZ = librosa.mel_frequencies(FRONTEND.n_mels + 2, fmin=FRONTEND.fmin, fmax=FRONTEND.fmax)[1:-1]


def test_the_band_pass_gain_is_scipys_butterworth() -> None:
    hz = np.linspace(1, TELEPHONE_RATE / 2 - 1, 400)
    _, response = sosfreqz(butter(BUTTERWORTH_ORDER, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE,
                                  output="sos"), worN=hz, fs=TELEPHONE_RATE)
    ours = band_pass_power_gain(torch.from_numpy(hz), LOW.double(), HIGH.double())[0].numpy()
    audible = np.abs(response) ** 2 > 1e-6
    assert np.allclose(DB * np.log(ours[audible]), DB * np.log(np.abs(response[audible]) ** 2), atol=1e-3)
    assert band_pass_power_gain(torch.tensor([0.0, 4000.0, 6000.0]), LOW, HIGH).abs().max() == 0


def test_the_emulation_is_close_to_the_waveform_line_on_speech() -> None:
    """On real speech, the emulated line's log-mels sit far closer to those of the waveform line
    (resample, filter, mu-law) than the clean log-mels do: overall and at both band edges."""
    front_end = LogMel(FRONTEND)
    emulation_error, line_effect = [], []
    for name in FILES:
        audio = read_audio(ravdess(name))
        with torch.no_grad():
            clean = front_end(torch.from_numpy(audio)[None])
            line = front_end(torch.from_numpy(telephone_band(audio))[None])
        emulated = phone_line_logmel(clean, LOW, HIGH, torch.tensor([MU_LAW_SNR_DB]), FRONTEND)
        power = clean[0].exp().mean(0)
        speech = power > power.max() * 1e-3  # frames within 30 dB of the loudest
        emulation_error.append(((emulated - line)[0][:, speech].abs().mean(1) * DB).numpy())
        line_effect.append(((clean - line)[0][:, speech].abs().mean(1) * DB).numpy())
    error, effect = np.mean(emulation_error, axis=0), np.mean(line_effect, axis=0)  # per mel band, dB
    assert error.mean() < 0.35 * effect.mean(), (error.mean(), effect.mean())
    for edge in (CENTRES_HZ < 300, (CENTRES_HZ > 3400) & (CENTRES_HZ < 4500)):
        assert error[edge].mean() < 0.5 * effect[edge].mean(), (error[edge], effect[edge])


def test_nothing_above_4_khz_survives_and_the_codec_noise_follows_the_frame() -> None:
    front_end = LogMel(FRONTEND)
    with torch.no_grad():
        clean = front_end(torch.from_numpy(read_audio(ravdess(FILES[0])))[None])
    clean[..., :10] = float(np.log(FRONTEND.log_floor))  # ten silent frames
    noiseless = phone_line_logmel(clean, LOW, HIGH, torch.tensor([300.0]), FRONTEND)
    filtered = (noiseless.exp() - FRONTEND.log_floor).clamp(min=0).mean(dim=1)  # per frame
    loud = filtered[0] > 1e-3 * filtered.max()
    for snr_db in (25.0, 40.0):
        line = phone_line_logmel(clean, LOW, HIGH, torch.tensor([snr_db]), FRONTEND)
        power = (line.exp() - FRONTEND.log_floor).clamp(min=0)
        assert float(power[0, CENTRES_HZ > 4600].max()) < 1e-3 * FRONTEND.log_floor  # float rounding only
        assert float(power[..., :10].max()) < 1e-3 * FRONTEND.log_floor  # silence stays silent
        added = power.mean(dim=1)[0, loud] / filtered[0, loud] - 1  # codec noise over filtered speech, per frame
        assert torch.allclose(added, torch.full_like(added, 10 ** (-snr_db / 10)), rtol=0.05)


def test_only_the_drawn_share_of_windows_goes_through_a_line() -> None:
    windows, _ = drawn_share_checked(lambda w, share, g: random_phone_line(w, share, g, FRONTEND), FRONTEND.n_mels)
    every = random_phone_line(windows, 1.0, torch.Generator().manual_seed(2), FRONTEND)
    top_band = (every[:, -1].exp() - FRONTEND.log_floor).clamp(min=0)  # 7.5-8 kHz
    assert float(top_band.max()) < 1e-9
