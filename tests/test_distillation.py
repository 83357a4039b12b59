"""Distillation: the loss term, that a network really learns what its teachers know, that a
recipe's teachers train on the very same files first, and the CLI's usage errors."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.fit import TrainSettings, distillation_loss, teacher_probabilities, train_backbone  # noqa: E402
from emovox.train.model import FrontendSpec  # noqa: E402
from tests.conftest import DATA  # noqa: E402


def test_the_distillation_term_is_the_weighted_kl_divergence_times_temperature_squared() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 8, generator=generator)
    teacher = torch.softmax(torch.randn(6, 8, generator=generator), dim=1)
    weights = torch.rand(6, generator=generator) + 0.1
    for temperature in (1.0, 4.0):
        kl = torch.nn.functional.kl_div(torch.log_softmax(logits / temperature, dim=1), teacher,
                                        reduction="none").sum(1)
        expected = temperature ** 2 * (weights * kl).sum() / weights.sum()
        assert distillation_loss(logits, teacher, weights, temperature).item() == pytest.approx(expected.item(),
                                                                                                rel=1e-5)
    matched = torch.softmax(logits / 2.0, dim=1)  # nothing to learn from one's own probabilities
    assert distillation_loss(logits, matched, weights, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    off = matched.clone()
    off[0] = 1 / 8
    assert distillation_loss(logits, off, weights * torch.tensor([0.0, 1, 1, 1, 1, 1]), 2.0).item() == pytest.approx(
        0.0, abs=1e-6)  # a window of weight 0 does not count


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


@pytest.mark.parametrize("teacher_probs", [None, np.full((3, 8), 1 / 8, np.float32), np.full((4, 7), 1 / 7, np.float32)])
def test_distillation_without_a_teacher_probability_per_window_and_class_is_refused(teacher_probs) -> None:
    logmel, targets = np.zeros((4, 64, 20), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="distill_weight needs"):
        train_backbone(logmel, targets, 8, TrainSettings(distill_weight=0.5), FrontendSpec(),
                       teacher_probs=teacher_probs)


def test_a_distilled_models_key_ignores_every_thread_count() -> None:
    """Students trained side by side at one thread each serve a later run at two, as plain runs do."""
    from emovox.train.corpora import Utterance
    from emovox.train.recipe import TEACHERS, Recipe, checkpoint_key

    items = [Utterance(Path(f"a{i}.wav"), "ravdess", "Actor_01", "neutral") for i in range(3)]

    def key(threads: int, teachers: tuple[str, ...] = ("default", "window-mean")) -> str:
        return checkpoint_key(Recipe(train=TrainSettings(distill_weight=0.5, threads=threads),
                                     teachers=tuple(replace(TEACHERS[n], threads=threads) for n in teachers)),
                              items, [0, 1])

    assert key(1) == key(2) != key(1, ("default",))


def test_ship_trains_each_teacher_on_the_same_files_before_the_student(tmp_path: Path, capsys) -> None:
    """Per fold and for the shipped model: the teachers first, each under the key a plain run of
    its recipe on those files has, then the student; the metadata names the teachers."""
    from emovox.train.cli import first_files_per_speaker
    from emovox.train.corpora import load_corpora
    from emovox.train.folds import split_with_validation
    from emovox.train.recipe import TEACHERS, Recipe, checkpoint_key

    cache, out = tmp_path / "cache", tmp_path / "model"
    status = ser_train(["ship", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "2",
                        "--folds", "1", "--epochs", "1", "--threads", "1", "--results", str(tmp_path / "results"),
                        "--cache", str(cache), "--out", str(out), "--name", "student",
                        "--distill-from", "window-mean,default"])
    assert status == 0
    trainings = [re.sub(r" \(\d+ windows\)", "", line) for line in capsys.readouterr().out.splitlines()
                 if line.startswith("training on")]
    assert trainings == ["training on 32 files"] * 2 + ["training on 32 files, distilled from 2 teachers"] + [
        "training on 48 files"] * 2 + ["training on 48 files, distilled from 2 teachers"]
    items = first_files_per_speaker(load_corpora(DATA, ("ravdess",)), 2)
    train_idx, _, _ = split_with_validation(items, 1)
    for name in ("default", "window-mean"):
        for files in (train_idx, list(range(len(items)))):
            key = checkpoint_key(replace(Recipe(), train=TEACHERS[name]), items, files)
            assert (cache / "checkpoints" / f"backbone-{key}.pt").exists()
    assert len(list((cache / "checkpoints").glob("*.pt"))) == 6
    metadata = json.loads((out / "student.int8.json").read_text())
    assert metadata["train"]["distill_weight"] == 0.5 and metadata["train"]["distill_temperature"] == 2.0
    assert [t["window_mean"] for t in metadata["teachers"]] == [False, True]  # sorted: default, window-mean


@pytest.mark.parametrize("arguments, message", [
    (["--distill-from", "oracle"], "--distill-from takes distinct names"),
    (["--distill-from", "default,default"], "--distill-from takes distinct names"),
    (["--distill-from", ","], "--distill-from takes distinct names"),
    (["--distill-weight", "0.5"], "--distill-weight needs --distill-from"),
    (["--distill-temperature", "3"], "--distill-temperature needs --distill-from"),
    (["--distill-from", "default", "--distill-weight", "0"], "--distill-weight takes a share"),
    (["--distill-from", "default", "--distill-weight", "1.5"], "--distill-weight takes a share"),
    (["--distill-from", "default", "--distill-temperature", "nan"], "--distill-temperature takes"),
    (["--distill-from", "default", "--distill-temperature", "0"], "--distill-temperature takes"),
    (["--distill-from", "default", "--distill-temperature", "1e200"], "--distill-temperature takes"),
    (["--distill-from", "default", "--mixup-alpha", "0.4"], "--mixup-alpha cannot be combined"),
    (["--distill-from", "default", "--mask-absent-labels"], "--mask-absent-labels cannot be combined"),
])
def test_bad_distillation_settings_are_usage_errors(capsys, arguments: list[str], message: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), *arguments]) == 2
    assert message in capsys.readouterr().err
