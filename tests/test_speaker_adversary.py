"""Speaker-adversarial training (``--speaker-adversary``): the gradient reversal, its ramp, that a run
without it trains exactly as before, and that the adversary never reaches the checkpoint."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.fit import TrainSettings, train_backbone  # noqa: E402
from emovox.train.model import FrontendSpec  # noqa: E402
from emovox.train.speaker_adversary import SpeakerAdversary, ramp, speaker_indices  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SETTINGS = TrainSettings(epochs=6, batch_size=16, threads=1, seed=1)
SPEAKERS = 4


def _windows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three classes, each a level in the low bands; four speakers, each an offset in the high bands
    that says nothing about the class."""
    rng = np.random.default_rng(0)
    n = 96
    classes, speakers = rng.integers(0, 3, n), np.arange(n) % SPEAKERS
    logmel = rng.standard_normal((n, 64, 20)) - 6.0
    logmel[:, :16] += classes[:, None, None]
    logmel[:, 40:] += 2.0 * speakers[:, None, None]
    return logmel.astype(np.float32), classes, np.array([f"s{s}" for s in speakers])


def _train(settings: TrainSettings, speakers: np.ndarray | None = None) -> torch.nn.Module:
    logmel, classes, _ = _windows()
    return train_backbone(logmel, classes, 8, settings, FrontendSpec(), log=lambda _: None, speakers=speakers)


def test_the_backbone_gets_the_speaker_loss_gradient_reversed_and_scaled() -> None:
    torch.manual_seed(0)
    adversary = SpeakerAdversary(8, 3)
    embedding = torch.randn(5, 8, requires_grad=True)
    speakers = torch.tensor([0, 1, 2, 0, 1])
    adversary(embedding, speakers, 0.5).backward()
    reversed_grad = embedding.grad.clone()
    classifier_grads = [p.grad.clone() for p in adversary.parameters()]
    embedding.grad = None
    adversary.zero_grad()
    torch.nn.functional.cross_entropy(adversary.classify(embedding), speakers).backward()
    torch.testing.assert_close(reversed_grad, -0.5 * embedding.grad)
    for reversed_p, plain_p in zip(classifier_grads, adversary.parameters()):  # the classifier itself learns
        torch.testing.assert_close(reversed_p, plain_p.grad)


def test_the_ramp_rises_from_nothing_to_full_strength() -> None:
    values = [ramp(p) for p in np.linspace(0, 1, 11)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(1.0, abs=1e-4)
    assert all(a < b for a, b in zip(values, values[1:]))


def test_speakers_are_indexed_densely() -> None:
    index, count = speaker_indices(np.array(["tess/OAF", "ravdess/03", "tess/OAF"]))
    assert count == 2 and index.tolist() == [1, 0, 1]


def test_off_it_trains_exactly_as_before() -> None:
    """Speakers given but no strength: same weights as a run that never heard of speakers."""
    _, _, speakers = _windows()
    plain, given = _train(SETTINGS).state_dict(), _train(SETTINGS, speakers).state_dict()
    for name in plain:
        torch.testing.assert_close(plain[name], given[name], rtol=0, atol=0)


def test_on_it_changes_what_is_learnt_and_the_checkpoint_holds_no_adversary() -> None:
    """The classifier exists only during training: the backbone saved is shaped as any other."""
    _, _, speakers = _windows()
    plain = _train(SETTINGS).state_dict()
    adversarial = _train(replace(SETTINGS, speaker_adversary=0.5), speakers).state_dict()
    assert adversarial.keys() == plain.keys()
    assert any(not torch.equal(plain[name], adversarial[name]) for name in plain)


def test_without_each_windows_speaker_it_is_refused() -> None:
    with pytest.raises(ValueError, match="needs each training window's speaker"):
        _train(replace(SETTINGS, speaker_adversary=0.3))


@pytest.mark.parametrize("extra, message", [
    (["--speaker-adversary", "-1"], "--speaker-adversary takes a strength"),
    (["--speaker-adversary", "nan"], "--speaker-adversary takes a strength"),
    (["--speaker-adversary", "0.3", "--mixup-alpha", "0.4"], "does not combine with --mixup-alpha"),
])
def test_bad_adversary_settings_are_usage_errors(capsys, extra: list[str], message: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), *extra]) == 2
    assert message in capsys.readouterr().err


def test_only_a_recipe_with_an_adversary_is_keyed_by_its_code() -> None:
    """Editing the adversary retrains the recipes that use it, and leaves every other checkpoint's key."""
    from emovox.train.recipe import ADVERSARY_CODE, Recipe, training_code

    assert ADVERSARY_CODE not in training_code(Recipe())
    assert ADVERSARY_CODE in training_code(Recipe(train=replace(Recipe().train, speaker_adversary=0.3)))
