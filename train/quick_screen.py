"""A fast screen of network shapes on a GPU, from the cached features alone.

A full ``ser-train cv`` fold takes 30-50 min on 2 CPU cores, and its scoring reads the test
actors' audio (int8 export, noise, phone line), so asking "would a wider CNN-LSTM learn more?" costs
a day per shape. The screen splits the work in two:

    python -m emovox.train.quick_screen pack --out .gpu/screen.npz          # here, beside the corpora
    python -m emovox.train.quick_screen run .gpu/screen.npz --widths 1,2 --device cuda \\
        --results benchmarks/results/experiments/<name>                      # anywhere, a GPU if any

``pack`` writes one file with what the 6 EmoBox folds need: the cached log-mel windows (8-bit
codes, 0.43 dB steps, about 45 MB with lzma), each file's corpus, speaker and label. ``run`` needs
neither the corpora nor the audio. Per (width, epochs, fold) it trains with the shipped recipe's
settings, fits the temperature on the fold's validation actors, and scores its test actors from their
cached windows with the PyTorch model (fp32): the fold's ``ua``, without the int8, noise and
phone-line scores. Width 1 is always trained too, in the same run, as the baseline: the screen's
numbers are compared with it, never with ``ser-train cv``'s. A shape that wins here earns a full run.
"""
from __future__ import annotations

import argparse
import json
import lzma
import multiprocessing
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the recipe's imports are heavy: the CLI's argument errors should not wait for them
    from emovox.train.recipe import Corpus

CODE_STEP = 0.1
"""Log-mel quantization step (natural log units: 0.43 dB); the codes span the floor to +5.1."""
PROTOCOL = ("EmoBox RAVDESS folds, 8 classes, the shipped recipe's training settings at each network width; "
            "temperature fitted on the fold's validation actors; test UA from the cached windows (log-mels in "
            "0.43 dB steps) with the PyTorch model, fp32. Mean and sample std (ddof=1) over the folds; the "
            "paired difference is against width 1 trained in the same run.")


def pack(corpus: Corpus, out: Path) -> None:
    """Everything ``run`` needs from a ``Corpus`` (its files and cached log-mels), in one file: no
    audio, no corpus folders."""
    from emovox.train.recipe import Recipe

    frontend = Recipe().frontend
    floor = np.log(frontend.log_floor)
    codes = np.clip(np.round((corpus.logmel.astype(np.float32) - floor) / CODE_STEP), 0, 255).astype(np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    items = corpus.items
    np.savez(out, codes_xz=np.frombuffer(lzma.compress(codes.tobytes()), dtype=np.uint8),
             shape=np.array(codes.shape), owner=corpus.owner,
             corpus=np.array([u.corpus for u in items]), speaker=np.array([u.speaker for u in items]),
             label=np.array([u.label for u in items]), path=np.array([str(u.path) for u in items]),
             frontend=json.dumps(asdict(frontend)))
    print(f"packed {len(items)} files, {len(codes)} windows: {out} ({out.stat().st_size / 2**20:.1f} MiB)")


PACKED_ARRAYS = ("codes_xz", "shape", "owner", "corpus", "speaker", "label", "path", "frontend")


def check_pack(packed: Path) -> None:
    """ValueError unless ``packed`` is a file that ``pack`` wrote, for this recipe's front end."""
    from emovox.train.recipe import Recipe

    try:
        with np.load(packed) as file:
            names = set(file.files)
            frontend = json.loads(str(file["frontend"])) if "frontend" in names else None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read {packed} as packed features: {error}") from None
    missing = [name for name in PACKED_ARRAYS if name not in names]
    if missing:
        raise ValueError(f"{packed} lacks {', '.join(missing)}: not written by the pack command")
    if frontend != asdict(Recipe().frontend):
        raise ValueError(f"{packed} was packed with another front end")


def unpack(packed: Path, decoded: Path) -> Corpus:
    """The packed corpus as a ``Corpus`` (log-mels decoded once to ``decoded``, then memory-mapped)."""
    from emovox.train.corpora import Utterance
    from emovox.train.recipe import Corpus, Recipe

    check_pack(packed)
    with np.load(packed) as file:
        if not decoded.exists():
            codes = np.frombuffer(lzma.decompress(file["codes_xz"].tobytes()), dtype=np.uint8)
            logmel = (np.log(Recipe().frontend.log_floor) + codes.astype(np.float32) * CODE_STEP).astype(np.float16)
            np.save(decoded, logmel.reshape(tuple(file["shape"])))
        items = [Utterance(Path(str(p)), str(c), str(s), str(lab)) for p, c, s, lab in
                 zip(file["path"], file["corpus"], file["speaker"], file["label"])]
        owner = file["owner"]
    return Corpus(items, np.load(decoded, mmap_mode="r"), owner)


def network_shape(width: float) -> dict:
    """The shipped CNN-LSTM's channels and LSTM units (``CNNLSTM``'s defaults), times ``width``."""
    import inspect

    from emovox.train.model import CNNLSTM

    shipped = inspect.signature(CNNLSTM).parameters
    return {"channels": tuple(max(1, round(c * width)) for c in shipped["channels"].default),
            "hidden": max(1, round(shipped["hidden"].default * width))}


def screen_fold(packed: Path, decoded: Path, width: float, epochs: int, fold: int, device: str,
                threads: int) -> dict:
    """Train one fold at one shape; UA of its validation and test actors (tempered window means)."""
    import torch

    from emovox.train import folds as emobox
    from emovox.train.calibration import fit_temperature, utterance_probs
    from emovox.train.corpora import LABELS
    from emovox.train.fit import backbone_logits, train_backbone
    from emovox.train.metrics import evaluate
    from emovox.train.recipe import SHIPPED_TRAINING, Recipe, window_corpora

    corpus = unpack(packed, decoded)
    settings = replace(SHIPPED_TRAINING, epochs=epochs, threads=threads)
    train_idx, val_idx, test_idx = emobox.split_with_validation(corpus.items, fold)
    logmel, labels, owner = corpus.windows_of(train_idx)
    corpus_ids, names = window_corpora(corpus, train_idx, owner)
    began = time.monotonic()
    backbone = train_backbone(np.ascontiguousarray(logmel), labels, len(LABELS), settings, Recipe().frontend,
                              lambda line: None, corpus_ids, names, device, network_shape(width))
    minutes = (time.monotonic() - began) / 60
    torch.set_num_threads(threads)
    scored = {}
    for part, idx in (("validation", val_idx), ("test", test_idx)):
        part_logmel, _, part_owner = corpus.windows_of(idx)
        truth = np.array([corpus.items[i].label_index for i in idx])
        scored[part] = (backbone_logits(backbone, np.ascontiguousarray(part_logmel)), part_owner, truth)
    temperature = fit_temperature(*scored["validation"])
    ua = {}
    for part, (logits, part_owner, truth) in scored.items():
        probs = utterance_probs(logits, part_owner, len(truth), temperature)
        ua[part] = round(evaluate(truth, probs.argmax(1), LABELS)["ua"], 4)
    return {"width": width, "epochs": epochs, "fold": fold, "ua": ua["test"], "validation_ua": ua["validation"],
            "temperature": round(temperature, 4), "minutes": round(minutes, 2), "device": device,
            "parameters": sum(p.numel() for p in backbone.parameters())}


def _screen_job(job: tuple) -> dict:
    return screen_fold(*job)


def summarise(results: list[dict]) -> list[dict]:
    """Per (width, epochs): mean and sample std over its folds, and the paired difference with
    width 1 at the same epochs on the folds both have."""
    rows = []
    for width, epochs in sorted({(r["width"], r["epochs"]) for r in results}, key=lambda k: (k[1], k[0])):
        mine = {r["fold"]: r for r in results if (r["width"], r["epochs"]) == (width, epochs)}
        base = {r["fold"]: r for r in results if (r["width"], r["epochs"]) == (1.0, epochs)}
        ua = [r["ua"] for r in mine.values()]
        paired = [mine[f]["ua"] - base[f]["ua"] for f in mine if f in base]
        rows.append({"width": width, "epochs": epochs, "folds": sorted(mine),
                     "parameters": next(iter(mine.values()))["parameters"],
                     "ua_mean": round(float(np.mean(ua)), 4),
                     "ua_std": round(float(np.std(ua, ddof=1)), 4) if len(ua) > 1 else 0.0,
                     "validation_ua_mean": round(float(np.mean([r["validation_ua"] for r in mine.values()])), 4),
                     "ua_minus_width1_mean": round(float(np.mean(paired)), 4) if paired else None,
                     "folds_above_width1": sum(d > 0 for d in paired),
                     "minutes_per_fold": round(float(np.mean([r["minutes"] for r in mine.values()])), 2)})
    return rows


def write_results(results: list[dict], results_dir: Path, command: str) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    (results_dir / "quick_screen.json").write_text(json.dumps(
        {"protocol": PROTOCOL, "command": command,
         "summary": summary, "folds": sorted(results, key=lambda r: (r["epochs"], r["width"], r["fold"]))},
        indent=1) + "\n")
    lines = ["| width | epochs | parameters | folds | test UA (PyTorch, cached windows) | validation UA | "
             "paired Δ vs width 1 | folds above width 1 | minutes per fold |", "|---|---|---|---|---|---|---|---|---|"]
    for row in summary:
        delta = "" if row["ua_minus_width1_mean"] is None else f"{row['ua_minus_width1_mean']:+.3f}"
        lines.append(f"| {row['width']:g} | {row['epochs']} | {row['parameters']:,} | {len(row['folds'])} | "
                     f"{row['ua_mean']:.3f} ± {row['ua_std']:.3f} | {row['validation_ua_mean']:.3f} | {delta} | "
                     f"{row['folds_above_width1']}/{len(row['folds'])} | {row['minutes_per_fold']:.1f} |")
    lines += ["", f"Regenerate: `{command}` (see `train/quick_screen.py`)."]
    (results_dir / "quick_screen.md").write_text("\n".join(lines) + "\n")


def run(packed: Path, widths: list[float], epochs: list[int], folds: list[int], device: str, jobs: int,
        results_dir: Path, command: str) -> list[dict]:
    """Every (epochs, width, fold), ``jobs`` at a time; the results are rewritten as each one ends,
    so a run stopped early keeps what it finished."""
    widths = [1.0] + [w for w in widths if w != 1.0]  # the baseline, always, first
    threads = max(1, (os.cpu_count() or 1) // jobs)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        decoded = Path(scratch) / "logmel.npy"
        unpack(packed, decoded)  # decoded once, before the workers map it
        todo = [(packed, decoded, w, e, f, device, threads) for e in epochs for w in widths for f in folds]
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for result in pool.imap_unordered(_screen_job, todo):
                results.append(result)
                print(f"width {result['width']:g}, {result['epochs']} epochs, fold {result['fold']}: "
                      f"UA {result['ua']:.3f} (validation {result['validation_ua']:.3f}), "
                      f"{result['minutes']:.1f} min", flush=True)
                write_results(results, results_dir, command)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emovox.train.quick_screen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="the cached features and labels, in one file")
    packing.add_argument("--data", type=Path, default=Path("../shared/data"))
    packing.add_argument("--cache", type=Path, default=Path(".cache/features"))
    packing.add_argument("--out", type=Path, required=True)
    running = commands.add_parser("run", help="train and score the folds at each width")
    running.add_argument("packed", type=Path)
    running.add_argument("--widths", default="1,2", help="CNN-LSTM width factors (1 = shipped; always run)")
    running.add_argument("--epochs", default="25", help="comma-separated epoch counts (default %(default)s)")
    running.add_argument("--folds", default="1,2,3,4,5,6")
    running.add_argument("--device", default="cpu", help="torch device for the network, e.g. cuda")
    running.add_argument("--jobs", type=int, default=1, help="folds trained at once (default %(default)s)")
    running.add_argument("--results", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            from emovox.train.corpora import LOADERS, load_corpora
            from emovox.train.recipe import Recipe, load_corpus

            pack(load_corpus(load_corpora(args.data, tuple(LOADERS)), Recipe(), args.cache, print), args.out)
            return 0
        widths = [float(w) for w in args.widths.split(",")]
        epochs = [int(e) for e in args.epochs.split(",")]
        folds = [int(f) for f in args.folds.split(",")]
        if any(w <= 0 for w in widths) or any(e < 1 for e in epochs) or any(f not in range(1, 7) for f in folds):
            raise ValueError("widths are > 0, epochs >= 1 and folds 1-6")
        if args.jobs < 1:
            raise ValueError(f"--jobs takes 1 or more, got {args.jobs}")
        if not args.packed.exists():
            raise FileNotFoundError(f"no packed features at {args.packed} (run the pack command first)")
        check_pack(args.packed)
    except (ValueError, FileNotFoundError) as error:
        print(f"quick_screen: error: {error}", file=sys.stderr)
        return 2
    command = "python -m emovox.train.quick_screen " + " ".join(argv if argv is not None else sys.argv[1:])
    run(args.packed, widths, epochs, folds, args.device, args.jobs, args.results, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
