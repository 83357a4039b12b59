"""A tiny training run end to end: features, one epoch, export, and the runtime runs the file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from tests.conftest import DATA, REPO, Recording, read_events, run_ser_live  # noqa: E402


def test_train_export_and_run(tmp_path: Path, three_utterances: Recording) -> None:
    out, results, cache = tmp_path / "model", tmp_path / "results", tmp_path / "cache"
    status = ser_train(["ship", "--data", str(DATA), "--corpora", "ravdess", "--limit-per-speaker", "2",
                        "--folds", "1,2", "--epochs", "1", "--out", str(out), "--results", str(results),
                        "--cache", str(cache), "--name", "tiny", "--phone-probability", "0.5",
                        "--window-mean", "--reverb-probability", "0.5"])
    assert status == 0
    model = out / "tiny.int8.onnx"  # --name sets every file's stem
    assert (out / "tiny.fp32.onnx").exists() and (out / "tiny.pt").exists()
    assert model.stat().st_size < 1_000_000
    cv = json.loads((results / "ravdess_cv.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [1, 2]
    assert all(f["test_files"] == 8 and f["validation_files"] == 8 for f in cv["folds"])
    assert (results / "ravdess_cv.md").exists() and (results / "ravdess_cv_confusion.png").stat().st_size > 0
    snr = json.loads((results / "ravdess_snr.json").read_text())
    assert set(snr) == {"white", "babble"} and list(snr["white"]) == ["clean", "20", "10", "5", "0"]
    assert all(0.0 <= f["int8_ua_telephone"] <= 1.0 for f in cv["folds"])  # the phone-line condition
    assert "telephone-band" in (results / "ravdess_cv.md").read_text()
    assert all(list(f["int8_ua_by_room_rt60"]) == ["0.3", "0.6", "0.9"] for f in cv["folds"])  # the rooms
    assert "reverberant room" in (results / "ravdess_cv.md").read_text()
    metadata = json.loads((out / "tiny.int8.json").read_text())
    assert metadata["name"] == "tiny"
    assert metadata["train"]["phone_probability"] == 0.5  # the emulated phone line ran in training
    assert metadata["train"]["reverb_probability"] == 0.5  # the emulated rooms ran in training
    assert metadata["train"]["window_mean"] is True  # and the exported graph subtracts the window mean
    assert metadata["temperature"] == cv["temperature_mean"] and metadata["evaluation"]["n_folds"] == 2
    assert list(cache.glob("logmel-*.npz")), "the front end was not cached"
    events_file = tmp_path / "events.jsonl"
    result = run_ser_live("--file", str(three_utterances.path), "--fast", "--no-dashboard",
                          "--model", str(model), "--json", str(events_file))
    assert result.returncode == 0, result.stderr
    assert sum(e["type"] == "utterance_end" for e in read_events(events_file)) == 3


def test_bad_corpus_name_is_a_usage_error(capsys) -> None:
    assert ser_train(["ship", "--data", str(DATA), "--corpora", "nope"]) == 2
    assert "unknown corpus" in capsys.readouterr().err


def test_a_model_name_that_is_not_a_file_stem_is_a_usage_error(capsys) -> None:
    assert ser_train(["ship", "--data", str(DATA), "--name", "../elsewhere"]) == 2
    assert "--name takes letters" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--noise-probability", "--phone-probability", "--reverb-probability"])
def test_a_share_outside_0_1_is_a_usage_error(flag: str, capsys) -> None:
    assert ser_train(["cv", "--data", str(DATA), flag, "1.5"]) == 2
    assert f"{flag} is a share" in capsys.readouterr().err


def test_baselines_run_under_both_protocols(tmp_path: Path) -> None:
    results = tmp_path / "results"
    status = ser_train(["baselines", "--data", str(DATA), "--limit-per-speaker", "2", "--only", "mlp,fusionnet",
                        "--results", str(results), "--cache", str(tmp_path / "cache")])
    assert status == 0
    report = json.loads((results / "baselines.json").read_text())
    for name in ("mlp", "fusionnet"):
        random_split, by_actor = report["baselines"][name]["random"], report["baselines"][name]["actor"]
        assert len(random_split["runs"]) == len(by_actor["runs"]) == 6
        assert all(run["test_rows"] == 8 for run in by_actor["runs"])  # 4 actors x 2 original files, no copies
        assert all(run["train_rows"] == 120 for run in by_actor["runs"])  # 20 actors x 2 files x 3 versions
        assert 0.0 <= by_actor["ua_mean"] <= 1.0
    assert "random split after augmentation" in (results / "baselines.md").read_text()


def test_baselines_resume_from_finished_splits(tmp_path: Path, capsys) -> None:
    """The slow baselines take hours on 2 cores: a second run reuses every finished split."""
    arguments = ["baselines", "--data", str(DATA), "--limit-per-speaker", "2", "--only", "mlp",
                 "--cache", str(tmp_path / "cache")]
    assert ser_train([*arguments, "--results", str(tmp_path / "first")]) == 0
    capsys.readouterr()
    assert ser_train([*arguments, "--results", str(tmp_path / "second")]) == 0
    log = capsys.readouterr().out
    assert log.count("(cached)") == 12, log
    first, second = (json.loads((tmp_path / run / "baselines.json").read_text()) for run in ("first", "second"))
    assert first == second


def test_cv_leaves_a_corpus_out_of_training_and_augments(tmp_path: Path) -> None:
    """``--leave-out tess``: TESS is loaded but no TESS file trains; mixup, pitch shift, time stretch,
    speed change, the corpus label mask, the per-corpus class balance, its corpus shares, the
    gender balance and weight averaging run through the same loop. The baseline table beside the
    results is rewritten around the new cross-validation."""
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(REPO / "benchmarks" / "results" / "baselines.json", results)
    status = ser_train(["cv", "--data", str(DATA), "--corpora", "ravdess,tess", "--leave-out", "tess",
                        "--mixup-alpha", "0.4", "--mask-absent-labels", "--class-balance", "per_corpus",
                        "--pitch-shift-semitones", "2", "--tempo-change", "0.1", "--speed-change", "0.05",
                        "--corpus-share", "windows", "--ravdess-share", "0.4", "--gender-balance",
                        "--average-last-epochs", "1", "--swa-rate", "0.2", "--threads", "1",
                        "--limit-per-speaker", "2", "--folds", "1", "--epochs", "2",
                        "--results", str(results), "--cache", str(tmp_path / "cache")])
    assert status == 0
    cv = json.loads((results / "ravdess_cv.json").read_text())
    assert cv["folds"][0]["train_files"] == 16 * 2  # the 16 training actors' files only, no TESS speaker's
    (evaluation,) = (tmp_path / "cache" / "evaluations").glob("fold1-*.json")
    # the fold's files are exported to a folder named after its evaluation: runs that score the same
    # fold side by side never read each other's int8 file
    assert (tmp_path / "cache" / "exports" / evaluation.stem / "model.int8.onnx").exists()
    table = (results / "baselines.md").read_text()
    assert "MLP 128-64-32-16" in table  # the baselines kept, and the cross-validation's row after them
    assert f"CNN-LSTM, trained on 2 corpora (1 of 6 folds) | see the row above | | **{cv['ua_mean']:.3f} ± " in table


@pytest.mark.parametrize("flag, value, message", [
    ("--leave-out", "ravdess", "--leave-out takes"),
    ("--noise-snr-db", "30,10", "LOW above HIGH"),
    ("--mixup-alpha", "-1", "--mixup-alpha is a Beta parameter"),
    ("--pitch-shift-semitones", "-1", "--pitch-shift-semitones takes 0-12"),
    ("--tempo-change", "1.5", "--tempo-change takes a share"),
    ("--speed-change", "-0.1", "--speed-change takes a share"),
    ("--ravdess-share", "1", "--ravdess-share takes a share"),
    ("--threads", "0", "--threads takes 1 or more"),
    ("--frame-ms", "70", "--frame-ms takes 20-64"),
    ("--frame-ms", "nan", "--frame-ms takes 20-64"),
    ("--frame-ms", "inf", "--frame-ms takes 20-64"),
])
def test_bad_experiment_settings_are_usage_errors(capsys, flag: str, value: str, message: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), flag, value]) == 2
    assert message in capsys.readouterr().err


def test_corpus_shares_without_the_per_corpus_balance_are_usage_errors(capsys) -> None:
    assert ser_train(["cv", "--data", str(DATA), "--class-balance", "pooled", "--corpus-share", "windows"]) == 2
    assert "need --class-balance per_corpus" in capsys.readouterr().err


def test_checkpoints_are_keyed_by_what_is_learned_not_by_thread_count() -> None:
    """Folds trained side by side at one thread each are reused by a later run at two; a new seed,
    another setting or other files still train afresh."""
    from dataclasses import replace

    from emovox.train.corpora import Utterance
    from emovox.train.recipe import Recipe, checkpoint_key

    items = [Utterance(Path(f"a{i}.wav"), "ravdess", "Actor_01", "neutral") for i in range(3)]
    recipe = Recipe()
    key = checkpoint_key(recipe, items, [0, 1])
    assert checkpoint_key(Recipe(train=replace(recipe.train, threads=1)), items, [0, 1]) == key
    assert checkpoint_key(Recipe(train=replace(recipe.train, seed=1)), items, [0, 1]) != key
    assert checkpoint_key(Recipe(train=replace(recipe.train, noise_probability=0.3)), items, [0, 1]) != key
    assert checkpoint_key(Recipe(train=replace(recipe.train, phone_probability=0.3)), items, [0, 1]) != key
    assert checkpoint_key(recipe, items, [0, 2]) != key


def test_only_a_recipe_that_trains_in_rooms_is_keyed_by_the_room_code() -> None:
    """Editing the room emulation retrains the room recipes, and leaves every other checkpoint's key."""
    from dataclasses import replace

    from emovox.train.recipe import ROOM_CODE, Recipe, training_code

    assert ROOM_CODE not in training_code(Recipe())
    assert ROOM_CODE in training_code(Recipe(train=replace(Recipe().train, reverb_probability=0.3)))
    with_room_teacher = Recipe(train=replace(Recipe().train, distill_weight=0.5),
                               teachers=(replace(Recipe().train, reverb_probability=0.3),))
    assert ROOM_CODE in training_code(with_room_teacher)
