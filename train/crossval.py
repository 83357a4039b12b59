"""The 6-fold speaker-independent RAVDESS protocol (EmoBox folds) for the CNN-LSTM recipe.

Per fold: train without the 4 test actors and without 4 validation actors, fit
the temperature on the validation actors, then score the test actors with the
PyTorch model and with the exported int8 file the runtime would load.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from emovox.train import folds as emobox
from emovox.train.calibration import expected_calibration_error, fit_temperature, utterance_probs
from emovox.train.corpora import LABELS, Utterance, read_audio
from emovox.train.ensemble import combined_logits, ensemble_model, model_members
from emovox.train.fit import backbone_logits, per_utterance
from emovox.train.metrics import evaluate
from emovox.train.recipe import (Corpus, Log, Recipe, calibration_items, checkpoint_key, export_model, full_model,
                                 onnx_probs, recording_windows, train_on)
from emovox.train.robustness import plot_snr, summarise_snr, ua_against_snr, ua_in_rooms, ua_on_telephone_band

METRIC_KEYS = ("ua", "wa", "macro_f1", "per_class_recall", "confusion")
EVALUATION_VERSION = 4
"""Bump when evaluate_fold's measurements change, so cached fold results are not reused."""
BABBLE_SOURCES = 40
"""Training actors' RAVDESS files that babble noise is mixed from."""


def group_ua(items: list[Utterance], truth: np.ndarray, pred: np.ndarray, attribute: str) -> dict[str, float]:
    """UA within each value of an utterance attribute (gender, intensity)."""
    values = np.array([getattr(u, attribute) or "unknown" for u in items])
    return {value: round(evaluate(truth[values == value], pred[values == value], LABELS)["ua"], 4)
            for value in sorted(set(values))}


def evaluation_cache(corpus: Corpus, fold: int, recipes: Sequence[Recipe], train_idx: list[int],
                     cache_dir: Path) -> Path:
    """Where a fold's evaluation is cached: named by its members' checkpoint keys."""
    keys = "+".join(checkpoint_key(recipe, corpus.items, train_idx) for recipe in recipes)
    return Path(cache_dir) / "evaluations" / f"fold{fold}-v{EVALUATION_VERSION}-{keys}.json"


def evaluate_fold(corpus: Corpus, fold: int, recipes: Sequence[Recipe], cache_dir: Path, work_dir: Path,
                  log: Log) -> dict:
    """Train on the fold's training speakers, calibrate on its validation actors, score its test actors.

    ``recipes``: one recipe, or an ensemble's members (each trained, then tempered on the validation
    actors, on its own; the fold's model is their mean probability, ``ensemble.ensemble_model``).
    The result is cached beside the checkpoints (same recipes, same data, same evaluation code
    version: same numbers), so ``ser-train ship`` after ``ser-train cv`` does not evaluate twice.
    """
    recipe = recipes[0]  # members share the front end, the windowing and the calibration files
    train_idx, val_idx, test_idx = emobox.split_with_validation(corpus.items, fold)
    train_idx = recipe.trainable(corpus.items, train_idx)
    if not test_idx or not val_idx:
        raise ValueError(f"fold {fold}: its test or validation actors are not in the data")
    cached = evaluation_cache(corpus, fold, recipes, train_idx, cache_dir)
    if cached.exists():
        result = json.loads(cached.read_text())
        log(f"fold {fold}: UA {result['ua']:.3f} (evaluated earlier: {cached})")
        return result
    began = time.monotonic()
    members = [train_on(corpus, train_idx, member, cache_dir, log) for member in recipes]

    val_logmel, _, val_owner = corpus.windows_of(val_idx)
    val_truth = np.array([corpus.items[i].label_index for i in val_idx])
    val_logits = [backbone_logits(member, val_logmel) for member in members]
    temperatures = [fit_temperature(logits, val_owner, val_truth) for logits in val_logits]
    val_combined = combined_logits(val_logits, temperatures)
    if len(members) == 1:  # its temperature is already inside combined_logits
        temperature, outer = temperatures[0], 1.0
        model = full_model(members[0], recipe, temperature)
    else:  # an average of calibrated members is under-confident: the ensemble's own temperature, fitted alike
        temperature = outer = fit_temperature(val_combined, val_owner, val_truth)
        model = ensemble_model(recipe.frontend, members, temperatures, temperature)
    val_probs = utterance_probs(val_combined, val_owner, len(val_idx), outer)
    val_ua = evaluate(val_truth, val_probs.argmax(1), LABELS)["ua"]

    test_items = [corpus.items[i] for i in test_idx]
    truth = np.array([u.label_index for u in test_items])
    clean = [read_audio(u.path) for u in test_items]  # read once: the clean, noisy and phone-line scores
    windows, owner = recording_windows(clean, recipe)
    with torch.no_grad():
        logmel = model.frontend(torch.from_numpy(windows)).numpy()
    logits = [backbone_logits(member, logmel) for member in model_members(model)]
    raw = utterance_probs(combined_logits(logits, [1.0] * len(logits)), owner, len(test_items))
    calibrated = utterance_probs(combined_logits(logits, temperatures), owner, len(test_items), outer)
    pred = calibrated.argmax(1)

    # a folder of its own: two runs scoring the same fold side by side once shared fold{N}/, and one
    # run's int8 scores came from the other's file (session 31)
    _, int8 = export_model(model, work_dir / cached.stem, "model",
                           calibration_items([corpus.items[i] for i in train_idx], recipe.calibration_files,
                                             recipe.train.seed), recipe)
    quantized = per_utterance(onnx_probs(int8, windows), owner, len(test_items))
    scores = evaluate(truth, pred, LABELS)
    talkers = [corpus.items[i] for i in train_idx if corpus.items[i].corpus == "ravdess"]
    talkers = [talkers[i] for i in np.random.default_rng(fold).permutation(len(talkers))[:BABBLE_SOURCES]]
    result = {
        "fold": fold, "test_actors": list(emobox.EMOBOX_TEST_ACTORS[fold]),
        "validation_actors": list(emobox.EMOBOX_TEST_ACTORS[emobox.validation_fold(fold)]),
        "train_files": len(train_idx), "validation_files": len(val_idx), "test_files": len(test_idx),
        **{k: scores[k] for k in METRIC_KEYS},
        "ua_by_gender": group_ua(test_items, truth, pred, "gender"),
        "ua_by_intensity": group_ua(test_items, truth, pred, "intensity"),
        "validation_ua": round(val_ua, 4),
        "temperature": round(temperature, 4),
        **({"member_temperatures": [round(t, 4) for t in temperatures]} if len(members) > 1 else {}),
        "ece_before": round(expected_calibration_error(raw, truth), 4),
        "ece_after": round(expected_calibration_error(calibrated, truth), 4),
        "int8": {k: round(v, 4) for k, v in evaluate(truth, quantized.argmax(1), LABELS).items()
                 if k in ("ua", "wa", "macro_f1")},
        "int8_ece": round(expected_calibration_error(quantized, truth), 4),
        "parity_same_top1": round(float((quantized.argmax(1) == pred).mean()), 4),
        "int8_ua_by_snr": ua_against_snr(int8, clean, truth, talkers, recipe, seed=fold),
        "int8_ua_telephone": ua_on_telephone_band(int8, clean, truth, recipe),
        "int8_ua_by_room_rt60": ua_in_rooms(int8, clean, truth, recipe, seed=fold),
        "minutes": round((time.monotonic() - began) / 60, 1),
    }
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result, indent=1) + "\n")
    log(f"fold {fold}: UA {result['ua']:.3f} WA {result['wa']:.3f} (int8 UA {result['int8']['ua']:.3f}, "
        f"parity {result['parity_same_top1']:.3f}), T {_temperatures(result)}, "
        f"ECE {result['ece_before']:.3f} -> {result['ece_after']:.3f}")
    return result


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single fold)."""
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return round(float(np.mean(values)), 4), round(spread, 4)


def summarise(fold_results: list[dict]) -> dict:
    """Mean and sample std over the folds, never the best fold."""
    if not fold_results:
        return {}
    out: dict = {"n_folds": len(fold_results)}
    for key in ("ua", "wa", "macro_f1", "ece_before", "ece_after", "temperature", "validation_ua"):
        out[f"{key}_mean"], out[f"{key}_std"] = _mean_std([r[key] for r in fold_results])
    for key in ("ua", "wa", "macro_f1"):
        out[f"int8_{key}_mean"], out[f"int8_{key}_std"] = _mean_std([r["int8"][key] for r in fold_results])
    if "member_temperatures" in fold_results[0]:  # an ensemble: each member's mean fitted temperature
        out["member_temperatures_mean"] = [_mean_std(list(t))[0] for t in
                                           zip(*(r["member_temperatures"] for r in fold_results))]
    out["int8_ece_mean"], _ = _mean_std([r["int8_ece"] for r in fold_results])
    out["parity_same_top1_mean"], _ = _mean_std([r["parity_same_top1"] for r in fold_results])
    for group in ("ua_by_gender", "ua_by_intensity"):
        keys = sorted({k for r in fold_results for k in r[group]})
        out[group] = {k: _mean_std([r[group][k] for r in fold_results if k in r[group]])[0] for k in keys}
    out["int8_ua_by_snr"] = summarise_snr([r["int8_ua_by_snr"] for r in fold_results])
    out["int8_ua_telephone_mean"], out["int8_ua_telephone_std"] = _mean_std(
        [r["int8_ua_telephone"] for r in fold_results])
    out["int8_ua_by_room_rt60"] = {rt60: dict(zip(("ua_mean", "ua_std"), _mean_std(
        [r["int8_ua_by_room_rt60"][rt60] for r in fold_results]))) for rt60 in fold_results[0]["int8_ua_by_room_rt60"]}
    pooled = np.sum([np.array(r["confusion"]) for r in fold_results], axis=0)
    out["pooled_confusion"] = pooled.tolist()
    out["pooled_per_class_recall"] = {label: round(float(pooled[i, i] / max(pooled[i].sum(), 1)), 4)
                                      for i, label in enumerate(LABELS)}
    return out


PROTOCOL = ("EmoBox RAVDESS speaker-independent folds, 8 classes. Per fold: 4 test actors; the next fold's 4 "
            "actors are validation, never trained on: they fit the fold's temperature. (Settings may only be "
            "chosen per fold on its own validation actors: the 6 validation sets together are all 24 actors, "
            "so choosing on their mean would let every fold's test actors vote.) Training uses every other "
            "speaker of every corpus. Per-file label = mean of the tempered window probabilities, as the "
            "runtime reports. Mean and sample std (ddof=1) over the folds.")


def cross_validate(corpus: Corpus, folds: list[int], recipes: Sequence[Recipe], cache_dir: Path, log: Log) -> dict:
    """``recipes``: one recipe, or an ensemble's members."""
    results = [evaluate_fold(corpus, fold, recipes, cache_dir, Path(cache_dir) / "exports", log) for fold in folds]
    return {"protocol": PROTOCOL, **summarise(results), "folds": results}


def write_cv_results(results_dir: Path, cv: dict, stem: str = "ravdess_cv") -> None:
    """``ravdess_cv.json``, ``.md`` and the pooled confusion-matrix PNG."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{stem}.json").write_text(json.dumps(cv, indent=1) + "\n")
    (results_dir / f"{stem}.md").write_text(cv_markdown(cv))
    if cv.get("folds"):
        (results_dir / "ravdess_snr.json").write_text(json.dumps(cv["int8_ua_by_snr"], indent=1) + "\n")
        plot_snr(cv["int8_ua_by_snr"], results_dir / "ravdess_snr.png",
                 f"int8 CNN-LSTM under noise, {cv['n_folds']} speaker-independent folds")
        plot_confusion(np.array(cv["pooled_confusion"]), results_dir / f"{stem}_confusion.png",
                       f"CNN-LSTM, {cv['n_folds']} speaker-independent folds, pooled (UA {cv['ua_mean']:.3f})")


def _temperatures(record: dict, suffix: str = "") -> str:
    """A fold's fitted temperature, an ensemble's after its members' (``0.80 (1.18/1.31)``); ``_mean``
    for the summary's."""
    members = record.get(f"member_temperatures{suffix}")
    return f"{record[f'temperature{suffix}']:.2f}" + (f" ({'/'.join(f'{t:.2f}' for t in members)})"
                                                     if members else "")


def cv_markdown(cv: dict) -> str:
    lines = ["| fold | test actors | UA | WA | macro-F1 | int8 UA | same top-1 | T | ECE before → after |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in cv.get("folds", []):
        actors = ", ".join(f"{a:02d}" for a in r["test_actors"])
        lines.append(f"| {r['fold']} | {actors} | {r['ua']:.3f} | {r['wa']:.3f} | {r['macro_f1']:.3f} | "
                     f"{r['int8']['ua']:.3f} | {r['parity_same_top1']:.3f} | {_temperatures(r)} | "
                     f"{r['ece_before']:.3f} → {r['ece_after']:.3f} |")
    if cv.get("folds"):
        lines.append(f"| **mean ± std** | | **{cv['ua_mean']:.3f} ± {cv['ua_std']:.3f}** | "
                     f"{cv['wa_mean']:.3f} ± {cv['wa_std']:.3f} | "
                     f"{cv['macro_f1_mean']:.3f} ± {cv['macro_f1_std']:.3f} | "
                     f"{cv['int8_ua_mean']:.3f} ± {cv['int8_ua_std']:.3f} | {cv['parity_same_top1_mean']:.3f} | "
                     f"{_temperatures(cv, '_mean')} | {cv['ece_before_mean']:.3f} → {cv['ece_after_mean']:.3f} |")
        lines += ["", "UA by gender: " + ", ".join(f"{k} {v:.3f}" for k, v in cv["ua_by_gender"].items()),
                  "UA by intensity: " + ", ".join(f"{k} {v:.3f}" for k, v in cv["ua_by_intensity"].items()),
                  "Pooled recall: " + ", ".join(f"{k} {v:.2f}" for k, v in cv["pooled_per_class_recall"].items()),
                  "", "| int8 UA by SNR | " + " | ".join(cv["int8_ua_by_snr"]["white"]) + " |",
                  "|---|" + "---|" * len(cv["int8_ua_by_snr"]["white"])]
        for kind, levels in cv["int8_ua_by_snr"].items():
            lines.append(f"| {kind} noise | " + " | ".join(f"{v['ua_mean']:.3f} ± {v['ua_std']:.3f}"
                                                       for v in levels.values()) + " |")
        lines += ["", f"int8 UA on telephone-band audio (8 kHz, 300-3400 Hz, G.711 mu-law): "
                      f"{cv['int8_ua_telephone_mean']:.3f} ± {cv['int8_ua_telephone_std']:.3f}",
                  "", "int8 UA in a reverberant room (60 m³, the talker 1 m from the microphone), by RT60: " +
                  ", ".join(f"{rt60} s {v['ua_mean']:.3f} ± {v['ua_std']:.3f}"
                            for rt60, v in cv["int8_ua_by_room_rt60"].items())]
    lines += ["", cv["protocol"], "", "Regenerate: `ser-train cv` (see README)."]
    return "\n".join(lines) + "\n"


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(6.4, 5.6))
    axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            axes.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if rows[i, j] > 0.5 else "black")
    axes.set_xticks(range(len(LABELS)), LABELS, rotation=45, ha="right")
    axes.set_yticks(range(len(LABELS)), LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

