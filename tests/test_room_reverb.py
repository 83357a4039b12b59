"""The room augmentation on cached log-mels: does it do what convolving the waveform with the room does?"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the [train] extra")

import torch  # noqa: E402

from emovox.train.corpora import read_audio  # noqa: E402
from emovox.train.model import FrontendSpec, LogMel  # noqa: E402
from emovox.train.room_reverb import (BENCHMARK_RT60_S, DECAY_PER_RT60, direct_to_reverberant_db,  # noqa: E402
                                      frame_lag_weights, random_room, reverberant_logmel, reverberate,
                                      room_impulse_response)

from .conftest import drawn_share_checked, ravdess  # noqa: E402

FRONTEND = FrontendSpec()
FILES = ("03-01-05-02-01-01-01", "03-01-04-02-02-01-02", "03-01-03-01-01-02-05", "03-01-06-02-02-01-08")
"""Angry, sad, happy and fearful; two women, two men."""
DB = 10 / np.log(10)


def test_the_impulse_response_has_its_drr_and_decays_60_db_over_its_rt60() -> None:
    rate, rt60 = 16000, 0.6
    response = room_impulse_response(rt60, 3.0, rate, np.random.default_rng(0))
    assert response[0] == 1.0 and len(response) == int(rt60 * rate)
    assert np.isclose(10 * np.log10(1 / np.sum(response[1:] ** 2)), 3.0)
    energy = response[1:] ** 2
    tenth = len(energy) // 10
    first, last = energy[:tenth].mean(), energy[-tenth:].mean()  # 0.9 RT60 apart: 54 dB
    assert 50 < 10 * np.log10(first / last) < 58


def test_the_benchmark_rooms_get_more_reverberant_with_rt60() -> None:
    drr = [direct_to_reverberant_db(t, 60.0, 1.0) for t in BENCHMARK_RT60_S]
    assert np.allclose(drr, [-1.87, -4.88, -6.64], atol=0.01)


def test_the_lag_weights_hold_the_direct_path_and_all_the_tail_energy() -> None:
    weights = frame_lag_weights(torch.tensor([0.3, 0.9]), torch.tensor([0.0, 6.0]), 400, FRONTEND)
    assert torch.allclose(weights.sum(1), torch.tensor([2.0, 1 + 10 ** -0.6]), atol=1e-5)
    hop_s = FRONTEND.hop_length / FRONTEND.sample_rate
    ratio = weights[0, 2] / weights[0, 1]  # one hop further down the tail
    assert np.isclose(float(ratio), np.exp(-DECAY_PER_RT60 * hop_s / 0.3), rtol=1e-4)


def test_the_emulation_is_close_to_the_convolved_waveform_on_speech() -> None:
    """On real speech, the emulated room's log-mels sit far closer to those of the convolved waveform
    than the clean log-mels do, in each benchmark room."""
    front_end = LogMel(FRONTEND)
    rng = np.random.default_rng(1)
    for rt60 in BENCHMARK_RT60_S:
        drr = direct_to_reverberant_db(rt60, 60.0, 1.0)
        emulation_error, room_effect = [], []
        for name in FILES:
            audio = read_audio(ravdess(name))
            with torch.no_grad():
                clean = front_end(torch.from_numpy(audio)[None])
                room = front_end(torch.from_numpy(reverberate(audio, rt60, drr, 16000, rng))[None])
            emulated = reverberant_logmel(clean, torch.tensor([rt60]), torch.tensor([drr]), FRONTEND)
            power = room[0].exp().mean(0)
            heard = power > power.max() * 1e-3  # frames within 30 dB of the loudest, tails included
            emulation_error.append(float((emulated - room)[0][:, heard].abs().mean() * DB))
            room_effect.append(float((clean - room)[0][:, heard].abs().mean() * DB))
        assert np.mean(emulation_error) < 0.5 * np.mean(room_effect), (rt60, emulation_error, room_effect)


def test_only_the_drawn_share_of_windows_is_put_in_a_room() -> None:
    windows, half = drawn_share_checked(lambda w, share, g: random_room(w, share, g, FRONTEND), FRONTEND.n_mels)
    assert bool((half >= windows - 1e-5).all())  # a room only adds energy
