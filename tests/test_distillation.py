"""Distillation: the loss term, that a network really learns what its teachers know, that a
recipe's teachers train on the very same files first, and the CLI's usage errors."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.fit import TrainSettings, distillation_loss, teacher_probabilities, train_backbone  # noqa: E402
from emovox.train.model import FrontendSpec  # noqa: E402
from tests.conftest import DATA  # noqa: E402


def test_the_distillation_term_is_zero_at_the_teachers_probabilities_and_grows_away_from_them() -> None:
    logits = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    weights = torch.ones(5)
    matched = torch.softmax(logits / 2.0, dim=1)
    assert distillation_loss(logits, matched, weights, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((5, 8), 1 / 8)
    assert distillation_loss(logits, uniform, weights, 2.0).item() > 0.01
    # a window of weight 0 does not count
    one_off = matched.clone()
    one_off[0] = uniform[0]
    assert distillation_loss(logits, one_off, torch.tensor([0.0, 1, 1, 1, 1]), 2.0).item() == pytest.approx(
        0.0, abs=1e-6)


def test_the_teachers_probabilities_are_their_softened_softmaxes_averaged() -> None:
    torch.manual_seed(0)
    teachers = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8)) for _ in range(2)]
    logmel = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(np.float16)
    probs = teacher_probabilities(teachers, logmel, 2.0)
    with torch.no_grad():
        expected = sum(torch.softmax(t(torch.from_numpy(logmel).float()) / 2.0, dim=1) for t in teachers) / 2
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_a_network_distilled_alone_learns_its_teachers_labels_not_the_hard_ones() -> None:
    """Hard labels of pure noise, teachers that know the class from the window's level: at
    distill_weight 1 the network follows the teachers."""
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 2, 96)
    logmel = (rng.standard_normal((96, 64, 20)) * 0.1 - 6.0 + 3.0 * classes[:, None, None]).astype(np.float32)
    noise_labels = rng.integers(0, 2, 96)
    teacher = np.full((96, 8), 0.01, dtype=np.float32)
    teacher[np.arange(96), classes] = 0.93
    settings = TrainSettings(epochs=6, batch_size=16, freq_masks=0, time_masks=0, gain_db=0.0,
                             distill_weight=1.0, threads=1)
    model = train_backbone(logmel, noise_labels, 8, settings, FrontendSpec(), log=lambda _: None,
                           teacher_probs=teacher)
    with torch.no_grad():
        predicted = model(torch.from_numpy(logmel)).argmax(1).numpy()
    assert (predicted == classes).mean() > 0.9


def test_distillation_without_teacher_probabilities_is_refused() -> None:
    logmel, targets = np.zeros((4, 64, 20), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="distill_weight needs"):
        train_backbone(logmel, targets, 8, TrainSettings(distill_weight=0.5), FrontendSpec())


def test_cv_trains_each_teacher_on_the_same_files_then_the_student(tmp_path: Path, capsys) -> None:
    from emovox.train.cli import TEACHERS
    from emovox.train.corpora import load_corpora
    from emovox.train.folds import split_with_validation
    from emovox.train.recipe import Recipe, checkpoint_key
    from emovox.train.cli import first_files_per_speaker

    cache, results = tmp_path / "cache", tmp_path / "results"
    status = ser_train(["cv", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "2",
                        "--folds", "1", "--epochs", "1", "--threads", "1", "--results", str(results),
                        "--cache", str(cache), "--distill-from", "default,window-mean"])
    assert status == 0
    log = capsys.readouterr().out
    assert log.count("training on 32 files") == 3 and "distilled from 2 teachers" in log
    items = first_files_per_speaker(load_corpora(DATA, ("ravdess",)), 2)
    train_idx, _, _ = split_with_validation(items, 1)
    for name in ("default", "window-mean"):  # each teacher under its own recipe's key, for these files
        key = checkpoint_key(replace(Recipe(), train=TEACHERS[name]), items, train_idx)
        assert (cache / "checkpoints" / f"backbone-{key}.pt").exists()
    assert len(list((cache / "checkpoints").glob("*.pt"))) == 3
    fold = json.loads((results / "ravdess_cv.json").read_text())["folds"][0]
    assert fold["train_files"] == 32 and 0.0 <= fold["ua"] <= 1.0


@pytest.mark.parametrize("arguments, message", [
    (["--distill-from", "oracle"], "--distill-from takes some of"),
    (["--distill-weight", "0.5"], "--distill-weight needs --distill-from"),
    (["--distill-from", "default", "--distill-weight", "0"], "--distill-weight takes a share"),
    (["--distill-from", "default", "--distill-temperature", "nan"], "--distill-temperature takes"),
    (["--distill-from", "default", "--mixup-alpha", "0.4"], "cannot be combined"),
])
def test_bad_distillation_settings_are_usage_errors(capsys, arguments: list[str], message: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), *arguments]) == 2
    assert message in capsys.readouterr().err
