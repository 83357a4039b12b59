"""A narrowband phone line: played on waveforms for the robustness benchmark, emulated on cached
log-mels for training.

The benchmark's line (``telephone_band``) resamples to 8 kHz, band-passes 300-3400 Hz and codes
G.711 mu-law. Training cannot afford that per window (its features are cached log-mels), so
``phone_line_logmel`` does in the log-mel domain what the line does to a spectrum: each mel band
loses the band-pass filter's power gain, everything above 4 kHz is gone, and mu-law's
quantization noise, white up to 4 kHz and a fixed ratio below each frame's power (companding),
is added. tests/test_phone_line.py checks the emulation against the waveform line.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from emovox.train.model import FrontendSpec, mel_filterbank, mel_power

TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
"""The classic narrowband voice channel (ITU-T G.712), sampled at 8 kHz."""
BUTTERWORTH_ORDER = 4
MU_LAW_SNR_DB = 37.0
"""Speech power over G.711 mu-law quantization noise: 36.5-37.6 dB (median per corpus) on 200 of
the training corpora's files through the line above; quiet RAVDESS files reach 25 dB."""
LINE_VARIETY = {"low_hz": (200.0, 400.0), "high_hz": (3000.0, 3700.0), "snr_db": (25.0, 40.0)}
"""Training draws each emulated line's band edges and codec noise uniformly from these ranges,
around the benchmark's line: real lines and codecs differ, and the model should not learn one."""


def mu_law_round_trip(audio: np.ndarray, mu: int = 255) -> np.ndarray:
    """Encode to 8-bit mu-law (G.711) and decode: the quantization a phone network adds."""
    compressed = np.sign(audio) * np.log1p(mu * np.abs(np.clip(audio, -1.0, 1.0))) / np.log1p(mu)
    code = np.round((compressed + 1.0) / 2.0 * mu)  # 256 levels
    decoded = code / mu * 2.0 - 1.0
    return (np.sign(decoded) * np.expm1(np.abs(decoded) * np.log1p(mu)) / mu).astype(np.float32)


def telephone_band(audio: np.ndarray, rate: int = 16000) -> np.ndarray:
    """``audio`` as heard through a narrowband phone line, back at ``rate``: resampled to 8 kHz,
    band-passed to 300-3400 Hz (4th-order Butterworth, causal like a real channel), mu-law coded."""
    import soxr
    from scipy.signal import butter, sosfilt

    narrow = soxr.resample(audio, rate, TELEPHONE_RATE)
    band = butter(BUTTERWORTH_ORDER, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    coded = mu_law_round_trip(sosfilt(band, narrow))
    return soxr.resample(coded, TELEPHONE_RATE, rate)[:len(audio)].astype(np.float32)


def band_pass_power_gain(hz: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[b, len(hz)] power gain of the digital Butterworth band-pass ``telephone_band`` applies, with
    edges ``low``/``high`` [b] (Hz) at 8 kHz: the analog response at bilinear-warped frequencies,
    which is what scipy's design is; 0 at DC and from the 4 kHz Nyquist limit up."""
    warp = torch.tan(torch.pi * hz.clamp(max=TELEPHONE_RATE / 2 - 1) / TELEPHONE_RATE)[None, :]
    warp_low = torch.tan(torch.pi * low / TELEPHONE_RATE)[:, None]
    warp_high = torch.tan(torch.pi * high / TELEPHONE_RATE)[:, None]
    ratio = (warp ** 2 - warp_low * warp_high) / (warp.clamp(min=1e-9) * (warp_high - warp_low))
    gain = 1 / (1 + ratio ** (2 * BUTTERWORTH_ORDER))
    return torch.where((hz > 0) & (hz < TELEPHONE_RATE / 2), gain, torch.zeros(()))


@lru_cache(maxsize=4)
def _filters(frontend: FrontendSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(mel filters [n_mels, n_bins], each DFT bin's frequency in Hz [n_bins]), float64."""
    hz = torch.linspace(0, frontend.sample_rate / 2, frontend.n_bins, dtype=torch.float64)
    return torch.from_numpy(mel_filterbank(frontend)).double(), hz


def mel_band_gains(frontend: FrontendSpec, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[b, n_mels] each mel band's power gain through the line: the filter's gain averaged over the
    band's triangle (exact for a spectrum that is flat within the band)."""
    filters, hz = _filters(frontend)
    gain = band_pass_power_gain(hz, low.double(), high.double())  # b, n_bins
    return (gain @ filters.T / filters.sum(dim=1)).float()


def quantization_noise_shape(frontend: FrontendSpec) -> torch.Tensor:
    """[n_mels] mel power of white noise up to 4 kHz, at unit mean power over the bands."""
    filters, hz = _filters(frontend)
    shape = filters @ (hz < TELEPHONE_RATE / 2).double()
    return (shape / shape.mean()).float()


def phone_line_logmel(logmel: torch.Tensor, low: torch.Tensor, high: torch.Tensor, snr_db: torch.Tensor,
                      frontend: FrontendSpec) -> torch.Tensor:
    """Log-mels [b, n_mels, frames] as they would come out of a phone line whose band-pass has
    edges ``low``/``high`` [b] (Hz) and whose codec adds noise ``snr_db`` [b] below each frame's
    power (measured, like the noise, as the mean mel power over the bands)."""
    speech = mel_power(logmel, frontend.log_floor) * mel_band_gains(frontend, low, high)[:, :, None]
    frame_power = speech.mean(dim=1, keepdim=True)  # b, 1, frames
    noise = quantization_noise_shape(frontend)[None, :, None] * frame_power * 10 ** (-snr_db[:, None, None] / 10)
    return torch.log(speech + noise + frontend.log_floor)


def random_phone_line(batch: torch.Tensor, probability: float, generator: torch.Generator,
                      frontend: FrontendSpec) -> torch.Tensor:
    """Send a share (``probability``) of the log-mel windows [b, n_mels, frames] through phone lines
    whose band edges and codec noise are drawn per window from ``LINE_VARIETY``."""
    b = batch.shape[0]
    on = torch.rand(b, generator=generator) < probability
    low, high, snr_db = ((lo + (hi - lo) * torch.rand(b, generator=generator))
                         for lo, hi in LINE_VARIETY.values())
    return torch.where(on[:, None, None], phone_line_logmel(batch, low, high, snr_db, frontend), batch)
