"""The CNN-LSTM recipe under the baselines' two protocols, and its row beside theirs."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.baselines import empty_report, write_baselines  # noqa: E402
from emovox.train.cli import first_files_per_speaker, main as ser_train  # noqa: E402
from emovox.train.corpora import load_corpora  # noqa: E402
from emovox.train.protocols import cnn_lstm_protocols, file_splits  # noqa: E402
from emovox.train.recipe import Recipe  # noqa: E402
from tests.conftest import DATA  # noqa: E402


def two_files_per_actor() -> list:
    return first_files_per_speaker(load_corpora(DATA, ("ravdess",)), 2)


def test_random_split_leaks_voices_and_actor_split_does_not() -> None:
    items = two_files_per_actor()
    for protocol in ("random", "actor"):
        for _, train, test in file_splits(items, protocol):
            assert not set(train) & set(test) and len(train) + len(test) == len(items)
            shared = {items[i].speaker for i in train} & {items[i].speaker for i in test}
            assert bool(shared) == (protocol == "random")


def test_cnn_lstm_row_joins_the_baseline_table(tmp_path: Path) -> None:
    results, cache = tmp_path / "results", tmp_path / "cache"
    assert ser_train(["baselines", "--data", str(DATA), "--limit-per-speaker", "2", "--only", "mlp",
                      "--results", str(results), "--cache", str(cache)]) == 0
    items = two_files_per_actor()
    report = empty_report(items)
    one_epoch = Recipe(train=replace(Recipe().train, epochs=1))
    report["baselines"]["cnn_lstm"] = cnn_lstm_protocols(items, one_epoch, cache, print)
    write_baselines(report, results)

    saved = json.loads((results / "baselines.json").read_text())
    assert list(saved["baselines"]) == ["mlp", "cnn_lstm"]  # the earlier baseline is kept
    entry = saved["baselines"]["cnn_lstm"]
    assert [(r["train_files"], r["test_files"]) for r in entry["actor"]["runs"]] == [(40, 8)] * 6
    assert [(r["train_files"], r["test_files"]) for r in entry["random"]["runs"]] == [(38, 10)] * 6
    assert 0.0 <= entry["actor"]["ua_mean"] <= 1.0 and entry["random"]["ua_std"] >= 0.0
    table = (results / "baselines.md").read_text()
    assert "CNN-LSTM recipe, trained on RAVDESS alone" in table and "shuffles files" in table


def test_protocols_refuse_other_corpora(tmp_path: Path) -> None:
    items = load_corpora(DATA, ("ravdess", "tess"))
    with pytest.raises(ValueError, match="RAVDESS alone"):
        cnn_lstm_protocols(items, Recipe(), tmp_path, print)
