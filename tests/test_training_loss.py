"""The training loss: corpus label masks, per-corpus class balance and corpus shares, mixup's
reproducibility."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.corpora import LABELS  # noqa: E402
from emovox.train.fit import (TrainSettings, WindowLoss, balance_genders, corpus_label_masks,  # noqa: E402
                              mixup_loss, per_corpus_class_weights, share_corpora)

EVERY_ROW = torch.arange(16)


def test_all_classes_allowed_at_equal_weights_is_plain_label_smoothed_cross_entropy() -> None:
    logits, targets = torch.randn(16, 8, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 8
    loss = WindowLoss(targets, torch.ones(8), 0.1, allowed=torch.ones(16, 8, dtype=torch.bool))
    assert loss(logits, EVERY_ROW).item() == pytest.approx(loss.plain(logits, targets).item(), rel=1e-5)
    weighted = WindowLoss(targets, torch.ones(8), 0.1, window_weight=torch.ones(16))
    assert weighted(logits, EVERY_ROW).item() == pytest.approx(loss.plain(logits, targets).item(), rel=1e-5)


def test_a_class_the_corpus_cannot_label_gets_no_gradient_and_no_loss() -> None:
    logits = torch.randn(4, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    allowed = torch.ones(4, 8, dtype=torch.bool)
    allowed[:, 0] = False  # e.g. TurEV: no neutral
    loss = WindowLoss(torch.tensor([1, 2, 3, 4]), torch.rand(8) + 0.5, 0.1, allowed=allowed)
    value = loss(logits, torch.arange(4))
    value.backward()
    assert torch.isfinite(value)
    assert torch.all(logits.grad[:, 0] == 0)
    raised = logits.detach().clone()
    raised[:, 0] += 50.0  # the absent class's logit does not change the loss at all
    assert loss(raised, torch.arange(4)).item() == pytest.approx(value.item(), rel=1e-6)


def test_label_masks_follow_what_each_corpus_labels() -> None:
    windows = [("turev", "calm"), ("turev", "sad"), ("ravdess", "neutral"), ("ravdess", "calm")]
    corpus_ids = np.array([0 if corpus == "turev" else 1 for corpus, _ in windows])
    masks = corpus_label_masks(np.array([LABELS.index(label) for _, label in windows]), corpus_ids, len(LABELS))
    turev = {LABELS[i] for i in range(len(LABELS)) if masks[0, i]}
    assert turev == {"calm", "sad"} and (masks[0] == masks[1]).all()
    assert {LABELS[i] for i in range(len(LABELS)) if masks[2, i]} == {"neutral", "calm"}


def test_per_corpus_balance_gives_each_class_of_a_corpus_equal_total_weight() -> None:
    # corpus 0: class 1 three times as common as class 0; corpus 1: only class 1
    targets = np.array([0, 1, 1, 1, 1, 1])
    corpus_ids = np.array([0, 0, 0, 0, 1, 1])
    weights = per_corpus_class_weights(targets, corpus_ids).numpy()
    assert weights.mean() == pytest.approx(1.0)
    assert weights[0] == pytest.approx(weights[1:4].sum())  # class 0 of corpus 0 == class 1 of corpus 0
    assert weights[4:].sum() == pytest.approx(weights[0])  # corpus 1's one class weighs as one class


def corpus_totals(weights: torch.Tensor, corpus_ids: np.ndarray) -> np.ndarray:
    return np.bincount(corpus_ids, weights=weights.numpy().astype(np.float64)) / float(weights.sum())


def test_corpus_shares_move_weight_between_corpora_not_within_them() -> None:
    # ravdess: 2 classes over 4 windows; tess: 1 class over 2 windows; nemo: 3 classes over 6 windows
    names = ["nemo", "ravdess", "tess"]
    corpus_ids = np.array([1, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0])
    targets = np.array([0, 1, 1, 1, 2, 2, 0, 1, 2, 2, 2, 2])
    balanced = per_corpus_class_weights(targets, corpus_ids)
    assert corpus_totals(balanced, corpus_ids) == pytest.approx([3 / 6, 2 / 6, 1 / 6])  # by classes (#10)
    by_windows = share_corpora(balanced, corpus_ids, names, TrainSettings(corpus_share="windows"))
    assert corpus_totals(by_windows, corpus_ids) == pytest.approx([6 / 12, 4 / 12, 2 / 12])
    assert by_windows.mean() == pytest.approx(1.0)
    ravdess_half = share_corpora(balanced, corpus_ids, names, TrainSettings(ravdess_share=0.5))
    assert corpus_totals(ravdess_half, corpus_ids) == pytest.approx([0.5 * 3 / 4, 0.5, 0.5 * 1 / 4])
    for weights in (by_windows, ravdess_half):  # within a corpus, the class balance is untouched
        ratio = weights / balanced
        for corpus in range(3):
            assert ratio[corpus_ids == corpus].numpy() == pytest.approx(float(ratio[corpus_ids == corpus][0]))


def test_a_ravdess_share_without_corpus_names_is_refused() -> None:
    """Without names, ``train_backbone`` cannot tell which corpus is RAVDESS: it says so rather
    than silently training without the share."""
    from emovox.train.fit import train_backbone
    from emovox.train.model import FrontendSpec

    logmel, targets = np.zeros((4, 64, 126), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="ravdess_share needs corpus_names"):
        train_backbone(logmel, targets, 8, TrainSettings(class_balance="per_corpus", ravdess_share=0.5),
                       FrontendSpec(), corpus_ids=np.array([0, 0, 1, 1]))


def test_mixup_is_reproducible_from_the_generator() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8))
    batch, index = torch.randn(6, 3, 4), torch.arange(6)
    loss = WindowLoss(torch.arange(6), torch.ones(8), 0.1)
    first = mixup_loss(model, batch, index, loss, 0.4, torch.Generator().manual_seed(3))
    second = mixup_loss(model, batch, index, loss, 0.4, torch.Generator().manual_seed(3))
    other = mixup_loss(model, batch, index, loss, 0.4, torch.Generator().manual_seed(4))
    assert first.item() == second.item() != other.item()


def test_gender_balance_splits_each_class_evenly_between_women_and_men() -> None:
    """Class 0: three women, one man, one speaker of unknown sex; class 1: women only (nothing to
    balance against, so it stays); each class keeps its total."""
    targets = np.array([0, 0, 0, 0, 0, 1, 1])
    genders = np.array([0, 0, 0, 1, -1, 0, 0])
    weights = torch.tensor([1.0, 1.0, 2.0, 1.0, 1.5, 1.0, 3.0])
    balanced = balance_genders(weights, targets, genders).double()
    balanced = balanced * weights.sum() / balanced.sum()  # undo the mean-1 normalisation
    assert balanced[:3].sum().item() == pytest.approx(balanced[3].item()) == pytest.approx(2.5)
    assert balanced[1].item() * 2 == pytest.approx(balanced[2].item())  # ratios within a sex kept
    assert balanced[4].item() == pytest.approx(1.5)
    assert balanced[5:].tolist() == pytest.approx([1.0, 3.0])
