"""The training loss's corpus label mask, and mixup's reproducibility."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.corpora import LABELS, Utterance  # noqa: E402
from emovox.train.fit import WindowLoss, mixup_loss  # noqa: E402
from emovox.train.recipe import corpus_label_masks  # noqa: E402


def test_all_classes_allowed_is_plain_label_smoothed_cross_entropy() -> None:
    logits, targets = torch.randn(16, 8, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 8
    loss = WindowLoss(torch.ones(8), smoothing=0.1)
    masked = loss(logits, targets, torch.ones(16, 8, dtype=torch.bool))
    assert masked.item() == pytest.approx(loss.plain(logits, targets).item(), rel=1e-5)


def test_a_class_the_corpus_cannot_label_gets_no_gradient_and_no_loss() -> None:
    logits = torch.randn(4, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    allowed = torch.ones(4, 8, dtype=torch.bool)
    allowed[:, 0] = False  # e.g. TurEV: no neutral
    targets = torch.tensor([1, 2, 3, 4])
    loss = WindowLoss(torch.rand(8) + 0.5, smoothing=0.1)(logits, targets, allowed)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.all(logits.grad[:, 0] == 0)
    raised = logits.detach().clone()
    raised[:, 0] += 50.0  # the absent class's logit does not change the loss at all
    assert WindowLoss(torch.ones(8), 0.1)(raised, targets, allowed).item() == pytest.approx(
        WindowLoss(torch.ones(8), 0.1)(logits.detach(), targets, allowed).item(), rel=1e-6)


def test_label_masks_follow_what_each_corpus_labels() -> None:
    items = [Utterance(path=f"{c}{l}.wav", corpus=c, speaker=c, label=l) for c, l in
             [("turev", "calm"), ("turev", "sad"), ("ravdess", "neutral"), ("ravdess", "calm")]]
    masks = corpus_label_masks(items)
    turev = {LABELS[i] for i in range(len(LABELS)) if masks[0, i]}
    assert turev == {"calm", "sad"} and (masks[0] == masks[1]).all()
    assert {LABELS[i] for i in range(len(LABELS)) if masks[2, i]} == {"neutral", "calm"}


def test_mixup_is_reproducible_from_the_generator() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8))
    batch, targets = torch.randn(6, 3, 4), torch.arange(6)
    loss = WindowLoss(torch.ones(8), 0.1)
    first = mixup_loss(model, batch, targets, None, loss, 0.4, torch.Generator().manual_seed(3))
    second = mixup_loss(model, batch, targets, None, loss, 0.4, torch.Generator().manual_seed(3))
    other = mixup_loss(model, batch, targets, None, loss, 0.4, torch.Generator().manual_seed(4))
    assert first.item() == second.item() != other.item()
