"""The width screen's two halves (train/quick_screen.py) on a few real files per speaker, on the CPU."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emovox.train.cli import first_files_per_speaker
from emovox.train.corpora import load_corpora
from emovox.train.quick_screen import CODE_STEP, main, pack, unpack
from emovox.train.recipe import Recipe, load_corpus
from tests.conftest import DATA


def test_pack_keeps_the_files_and_their_log_mels_within_half_a_step_then_run_screens_both_widths(
        tmp_path: Path) -> None:
    items = first_files_per_speaker(load_corpora(DATA), 3)
    corpus = load_corpus(items, Recipe(), tmp_path / "cache", lambda line: None)
    packed = tmp_path / "screen.npz"
    pack(corpus, packed)

    restored = unpack(packed, tmp_path / "decoded.npy")
    assert [(u.corpus, u.speaker, u.label) for u in restored.items] == [(u.corpus, u.speaker, u.label) for u in items]
    assert np.array_equal(restored.owner, corpus.owner)
    error = np.abs(restored.logmel.astype(np.float32) - corpus.logmel.astype(np.float32))
    assert error.max() <= CODE_STEP / 2 + 0.01  # + float16 rounding of the decoded value

    results = tmp_path / "screen"
    assert main(["run", str(packed), "--widths", "1.5", "--epochs", "1", "--folds", "1",
                 "--results", str(results)]) == 0
    report = json.loads((results / "quick_screen.json").read_text())
    rows = {row["width"]: row for row in report["summary"]}
    assert set(rows) == {1.0, 1.5}  # width 1, the baseline, is always trained too
    assert rows[1.0]["parameters"] == 250_457 and rows[1.5]["parameters"] == 561_473
    for fold in report["folds"]:
        assert fold["fold"] == 1 and 0.0 <= fold["ua"] <= 1.0 and 0.0 <= fold["validation_ua"] <= 1.0
    assert rows[1.5]["ua_minus_width1_mean"] == round(rows[1.5]["ua_mean"] - rows[1.0]["ua_mean"], 4)
    assert "| 1.5 | 1 | 561,473 | 1 |" in (results / "quick_screen.md").read_text()


def test_a_missing_pack_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path / "missing.npz"), "--results", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "missing.npz" in line and "pack" in line
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_pack_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    not_a_pack = tmp_path / "screen.npz"
    not_a_pack.write_text("hello")
    assert main(["run", str(not_a_pack), "--results", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "screen.npz" in line and not (tmp_path / "out").exists()
