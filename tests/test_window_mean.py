"""The per-window log-mel mean subtraction (``--window-mean``): what it removes, what it keeps,
and that the exported graph computes it as PyTorch does."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the network needs the [train] extra")

from emovox.realtime.windowing import fit_to_window  # noqa: E402
from emovox.train.corpora import read_audio  # noqa: E402
from emovox.train.export import export_fp32  # noqa: E402
from emovox.train.model import (EmotionModel, FrontendSpec, LogMel, model_from_metadata, real_frames,  # noqa: E402
                                 subtract_window_mean)
from emovox.train.recipe import onnx_probs, torch_probs  # noqa: E402
from tests.conftest import ravdess  # noqa: E402

SPEC = FrontendSpec()
WINDOW = 40000  # 2.5 s at 16 kHz


def logmels(waves: np.ndarray) -> torch.Tensor:
    return LogMel(SPEC)(torch.from_numpy(waves))


def test_a_level_or_a_fixed_spectral_tilt_is_removed_and_the_dynamics_kept() -> None:
    speech = read_audio(ravdess("03-01-05-02-01-01-01"))[9600:49600]  # 0.6-3.1 s, the VAD's span
    base = logmels(speech[None].astype(np.float32))
    real = real_frames(base, SPEC.log_floor)
    assert 0.9 < real.mean() < 1  # RAVDESS's gated pauses sit at the floor: a few frames
    tilt = torch.linspace(-2, 2, SPEC.n_mels).view(1, -1, 1)  # a microphone's or a voice's colouring
    coloured = base + (1.5 + tilt) * real  # a gated pause stays silent whatever the gain
    normalised = subtract_window_mean(base, SPEC.log_floor)
    voiced = real[0, 0].bool()
    assert torch.allclose(subtract_window_mean(coloured, SPEC.log_floor)[..., voiced], normalised[..., voiced],
                          atol=1e-4)
    assert normalised[..., voiced].mean(dim=2).abs().max() < 1e-4  # every band's mean is gone...
    spread = normalised[..., voiced].std(dim=2)
    assert torch.allclose(spread, base[..., voiced].std(dim=2), atol=1e-4)  # ...but not its movement


def test_zero_padding_is_left_out_of_the_mean() -> None:
    """A short utterance's window is zero-padded (``fit_to_window``): the padding's frames sit at the
    log floor and must not drag the mean of the frames that hold the voice."""
    speech = read_audio(ravdess("03-01-05-02-01-01-01"))[16000:32000]  # 1 s of voice in a 2.5 s window
    padded = logmels(fit_to_window(speech, WINDOW)[None])
    real = real_frames(padded, SPEC.log_floor)[:, 0].bool()
    assert 0.3 < real.float().mean() < 0.5  # about 1 s of 2.5 s
    normalised = subtract_window_mean(padded, SPEC.log_floor)
    assert normalised[:, :, real[0]].mean(dim=2).abs().max() < 1e-4


def test_the_exported_graph_subtracts_the_mean_as_pytorch_does(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = EmotionModel(SPEC, 8, window_mean=True).eval()
    with torch.no_grad():  # weights away from their initial values, so the check is not trivial
        for parameter in model.backbone.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    path = tmp_path / "window_mean.fp32.onnx"
    export_fp32(model, path, WINDOW)
    audio = read_audio(ravdess("03-01-05-02-01-01-01"))
    windows = np.stack([audio[8000:48000], fit_to_window(audio[16000:32000], WINDOW)]).astype(np.float32)
    reference = torch_probs(model, windows)
    assert np.abs(onnx_probs(path, windows) - reference).max() < 1e-4
    without = EmotionModel(SPEC, 8).eval()
    without.load_state_dict(model.state_dict())  # same weights: the switch holds none
    assert np.abs(torch_probs(without, windows) - reference).max() > 1e-3


def test_the_switch_travels_in_the_metadata() -> None:
    meta = json.loads(json.dumps({"frontend": vars(SPEC), "labels": list("abcdefgh"), "train": {"window_mean": True}}))
    assert model_from_metadata(meta).backbone.window_mean
    del meta["train"]["window_mean"]  # files shipped before the switch existed
    assert not model_from_metadata(meta).backbone.window_mean
