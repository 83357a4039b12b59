"""Weight averaging (``--average-last-epochs``, ``--swa-rate``): the model returned is the mean of
the chosen epoch ends' weights, its batch norm recomputed; the classic form holds those epochs at a
constant rate; bad settings are refused."""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.fit import TrainSettings, train_backbone  # noqa: E402
from emovox.train.model import FrontendSpec  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SETTINGS = TrainSettings(epochs=4, batch_size=16, threads=1)


def _windows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, 48)
    logmel = (rng.standard_normal((48, 64, 20)) - 6.0 + classes[:, None, None]).astype(np.float32)
    return logmel, classes


def _train(settings: TrainSettings) -> torch.nn.Module:
    logmel, classes = _windows()
    return train_backbone(logmel, classes, 8, settings, FrontendSpec(), log=lambda _: None)


def test_the_model_is_the_mean_of_the_last_epochs_weights(monkeypatch) -> None:
    snapshots = []
    update = torch.optim.swa_utils.AveragedModel.update_parameters

    def recording(self, model):
        snapshots.append(copy.deepcopy(model.state_dict()))
        return update(self, model)

    monkeypatch.setattr(torch.optim.swa_utils.AveragedModel, "update_parameters", recording)
    averaged = _train(replace(SETTINGS, average_last_epochs=2))
    plain = _train(SETTINGS)
    assert len(snapshots) == 2
    for name, parameter in averaged.named_parameters():
        expected = (snapshots[0][name] + snapshots[1][name]) / 2
        torch.testing.assert_close(parameter.detach(), expected)
    # the last snapshot is the plain run's last epoch: averaging draws nothing during training
    for name, parameter in plain.named_parameters():
        torch.testing.assert_close(parameter.detach(), snapshots[1][name])


def test_batch_norm_is_recomputed_for_the_averaged_weights() -> None:
    """At N = 1 the weights are the plain run's; only the batch-norm statistics differ: now an
    exact average over one pass of the training windows rather than a moving one."""
    unaugmented = replace(SETTINGS, freq_masks=0, time_masks=0, gain_db=0.0)
    plain = _train(unaugmented)
    last = _train(replace(unaugmented, average_last_epochs=1))
    for (name, a), (_, b) in zip(plain.named_parameters(), last.named_parameters()):
        torch.testing.assert_close(a, b, msg=name)
    logmel, _ = _windows()
    mean = last.input_norm.running_mean.numpy()
    np.testing.assert_allclose(mean, logmel.mean(axis=(0, 2)), atol=1e-4)  # 3 equal batches: exact
    assert not np.allclose(mean, plain.input_norm.running_mean.numpy(), atol=1e-3)
    assert all(torch.isfinite(b).all() for b in last.buffers())


def test_classic_swa_holds_the_averaged_epochs_at_a_constant_rate(monkeypatch) -> None:
    """4 epochs of 3 steps, the last 2 averaged: the one-cycle runs over the first 6 steps (up, then
    down to near 0), the last 6 all take swa_rate x the peak."""
    rates = []
    step = torch.optim.AdamW.step

    def recording(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording)
    _train(replace(SETTINGS, average_last_epochs=2, swa_rate=0.2))
    assert len(rates) == 12
    cycle, constant = rates[:6], rates[6:]
    assert max(cycle) == pytest.approx(SETTINGS.learning_rate, rel=0.05) and cycle[-1] < 0.1 * SETTINGS.learning_rate
    assert constant == [pytest.approx(0.2 * SETTINGS.learning_rate)] * 6


@pytest.mark.parametrize("average, rate", [(0, 0.2), (4, 0.2), (2, -0.5), (2, 1.5)])
def test_classic_swa_needs_a_rate_share_and_a_cycle_before_it(average: int, rate: float) -> None:
    with pytest.raises(ValueError, match="swa_rate takes"):
        _train(replace(SETTINGS, average_last_epochs=average, swa_rate=rate))


@pytest.mark.parametrize("epochs", [-1, 5])
def test_averaging_more_epochs_than_trained_is_refused(epochs: int) -> None:
    with pytest.raises(ValueError, match="average_last_epochs takes 0-4"):
        _train(replace(SETTINGS, average_last_epochs=epochs))


@pytest.mark.parametrize("value", ["-1", "26"])
def test_the_cli_refuses_an_average_beyond_the_epochs(capsys, value: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), "--average-last-epochs", value]) == 2
    assert "--average-last-epochs takes 0-25" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--swa-rate", "0.2"], ["--swa-rate", "nan", "--average-last-epochs", "10"],
                                   ["--swa-rate", "0", "--average-last-epochs", "10"],
                                   ["--swa-rate", "0.2", "--average-last-epochs", "25"]])
def test_the_cli_refuses_a_swa_rate_it_cannot_use(capsys, extra: list[str]) -> None:
    assert ser_train(["cv", "--data", str(DATA), *extra]) == 2
    assert "--swa-rate takes a share" in capsys.readouterr().err
