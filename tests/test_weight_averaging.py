"""Weight averaging (``--average-last-epochs``): the model returned is the mean of the chosen epoch
ends' weights, its batch norm recomputed, and bad settings are refused."""
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


@pytest.mark.parametrize("epochs", [-1, 5])
def test_averaging_more_epochs_than_trained_is_refused(epochs: int) -> None:
    with pytest.raises(ValueError, match="average_last_epochs takes 0-4"):
        _train(replace(SETTINGS, average_last_epochs=epochs))


@pytest.mark.parametrize("value", ["-1", "26"])
def test_the_cli_refuses_an_average_beyond_the_epochs(capsys, value: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), "--average-last-epochs", value]) == 2
    assert "--average-last-epochs takes 0-25" in capsys.readouterr().err
