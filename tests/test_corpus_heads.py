"""Per-corpus output heads (``--corpus-heads``): each corpus's offset applies to its own windows only,
the returned network is a plain one whose head is shared + RAVDESS's offset, and a corpus whose
labels contradict RAVDESS's no longer drags RAVDESS's boundaries with it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.corpus_heads import CorpusOffsets, kept_corpus_index  # noqa: E402
from emovox.train.fit import TrainSettings, backbone_logits, train_backbone  # noqa: E402
from emovox.train.model import CNNLSTM, FrontendSpec  # noqa: E402
from emovox.train.recipe import CORPUS_HEADS_CODE, TEACHERS, Recipe, ensemble_member, training_code  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SPEC = FrontendSpec()
FRAMES = 124


def test_offsets_start_at_zero_and_each_window_gets_its_own_corpus_offset() -> None:
    offsets = CorpusOffsets(embedding=4, n_classes=3, n_corpora=2)
    embedding = torch.randn(5, 4)
    corpus = torch.tensor([0, 1, 1, 0, 1])
    assert torch.equal(offsets(embedding, corpus), torch.zeros(5, 3))  # training starts as a plain network's
    with torch.no_grad():
        offsets.weight.copy_(torch.randn(2, 3, 4))
        offsets.bias.copy_(torch.randn(2, 3))
    got = offsets(embedding, corpus)
    for row, c in enumerate(corpus.tolist()):
        expected = offsets.weight[c] @ embedding[row] + offsets.bias[c]
        assert torch.allclose(got[row], expected, atol=1e-6)


def test_folding_makes_the_shared_head_classify_as_shared_plus_the_kept_offset() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(4, 3)
    offsets = CorpusOffsets(embedding=4, n_classes=3, n_corpora=3)
    with torch.no_grad():
        offsets.weight.copy_(torch.randn(3, 3, 4))
        offsets.bias.copy_(torch.randn(3, 3))
    embedding = torch.randn(6, 4)
    with torch.no_grad():
        expected = head(embedding) + offsets(embedding, torch.full((6,), 2))
        offsets.fold_into(head, 2)
        assert torch.allclose(head(embedding), expected, atol=1e-6)


def test_ravdess_must_be_among_the_training_corpora() -> None:
    assert kept_corpus_index(["emovo", "nemo", "ravdess", "tess"]) == 2
    with pytest.raises(ValueError, match="needs ravdess among the training corpora"):
        kept_corpus_index(["emovo", "tess"])
    with pytest.raises(ValueError, match="needs ravdess"):
        kept_corpus_index(None)


def _contradicting_corpora(per_corpus: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two corpora whose windows carry the same cue (energy in the low or the high bands) under
    opposite labels: RAVDESS (index 1) calls low-band windows class 0, the other corpus (index 0)
    calls them class 1. One head must split the difference; RAVDESS's offset need not."""
    rng = np.random.default_rng(seed)
    low_band = rng.integers(0, 2, 2 * per_corpus)
    corpus = np.repeat([1, 0], per_corpus)
    logmel = rng.normal(-6.0, 0.5, (2 * per_corpus, SPEC.n_mels, FRAMES))
    half = SPEC.n_mels // 2
    for i, low in enumerate(low_band):
        logmel[i, :half] += 4.0 if low else 0.0
        logmel[i, half:] += 0.0 if low else 4.0
    labels = np.where(corpus == 1, 1 - low_band, low_band)
    return logmel.astype(np.float16), labels.astype(np.int64), corpus


def test_with_offsets_the_returned_network_follows_ravdess_where_another_corpus_contradicts_it() -> None:
    logmel, labels, corpus = _contradicting_corpora(per_corpus=96, seed=0)
    names = ["other", "ravdess"]
    plain = TrainSettings(epochs=8, freq_masks=0, time_masks=0, gain_db=0.0, label_smoothing=0.0, threads=1)
    test_logmel, test_labels, test_corpus = _contradicting_corpora(per_corpus=64, seed=1)
    ravdess = test_corpus == 1

    def ravdess_accuracy(settings: TrainSettings) -> float:
        model = train_backbone(logmel, labels, 2, settings, SPEC, lambda _: None, corpus, names)
        assert type(model) is CNNLSTM
        assert set(model.state_dict()) == set(CNNLSTM(SPEC.n_mels, 2).state_dict())  # a plain checkpoint
        predicted = backbone_logits(model, test_logmel[ravdess]).argmax(axis=1)
        return float((predicted == test_labels[ravdess]).mean())

    with_offsets = ravdess_accuracy(replace(plain, corpus_heads=True))
    one_head = ravdess_accuracy(plain)
    assert with_offsets >= 0.9
    assert with_offsets > one_head + 0.2


def test_the_heads_refuse_mixup_weight_averaging_and_a_run_without_corpora() -> None:
    logmel, labels, corpus = _contradicting_corpora(per_corpus=4, seed=0)
    names = ["other", "ravdess"]
    for settings in (TrainSettings(corpus_heads=True, mixup_alpha=0.4),
                     TrainSettings(corpus_heads=True, average_last_epochs=2)):
        with pytest.raises(ValueError, match="corpus heads do not combine"):
            train_backbone(logmel, labels, 2, settings, SPEC, lambda _: None, corpus, names)
    with pytest.raises(ValueError, match="needs each training window's corpus"):
        train_backbone(logmel, labels, 2, TrainSettings(corpus_heads=True), SPEC, lambda _: None)


def test_the_preset_is_the_default_recipe_with_heads_and_its_code_keys_only_its_checkpoints() -> None:
    assert TEACHERS["corpus-heads"] == replace(TEACHERS["default"], corpus_heads=True)
    assert CORPUS_HEADS_CODE not in training_code(Recipe())
    assert CORPUS_HEADS_CODE in training_code(Recipe(train=TEACHERS["corpus-heads"]))


def test_an_ensemble_run_with_heads_gives_every_member_its_own_recipe_plus_heads() -> None:
    for name in ("default", "noise", "window-mean"):
        member = ensemble_member(name, seed=3, corpus_heads=True).train
        assert member == replace(TEACHERS[name], seed=3, threads=1, corpus_heads=True)
        assert ensemble_member(name, seed=3).train == replace(member, corpus_heads=False)
    assert ensemble_member("default", seed=3, corpus_heads=True) == ensemble_member("corpus-heads", seed=3)


@pytest.mark.parametrize(("extra", "message"), [
    (["--corpora", "tess,emovo"], "--corpora must include ravdess"),
    (["--mixup-alpha", "0.4"], "--corpus-heads does not combine with --mixup-alpha"),
    (["--average-last-epochs", "5"], "--corpus-heads does not combine with --average-last-epochs"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, extra: list[str], message: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), "--corpus-heads", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
