"""The seed systems as baselines, on RAVDESS, under the protocol they used and under the honest one.

(a) ``random``: all rows (each file and its two augmented copies) shuffled and split 80/20, as the
    seed notebooks did, so copies of a test recording (and every test actor's voice) are trained on;
(b) ``actor``: the 6 EmoBox folds; training actors' files with their copies, the 4 test actors'
    original files only.
Each split is repeated 6 times (6 seeds for (a), the 6 folds for (b)): mean and sample std over them.
Features are standardised with statistics of the training rows only. Fixed epochs, no selection
on test data (the seeds' own runs picked their best epoch on the test split; we do not).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emovox.train import folds as emobox
from emovox.train.corpora import LABELS, Utterance
from emovox.train.metrics import evaluate
from emovox.train.seed import SeedCNN
from emovox.train.seed_features import VERSIONS, seed_feature_table, utterance_vectors

Log = Callable[[str], None]
MEL_ROWS = slice(34, 162)  # the 128 mel bands inside the 162 frame features


@dataclass
class Rows:
    """One row per (file, version)."""

    vectors: np.ndarray   # [n, 162]
    frames: np.ndarray    # [n, 162, 98] float16, zero after a clip's own frames
    stats: np.ndarray     # [n, 6]
    gender: np.ndarray    # [n] 1 male, 0 female (oracle, as SER-FusionNet used it)
    labels: np.ndarray    # [n]
    file: np.ndarray      # [n] source file index
    version: np.ndarray   # [n] index into VERSIONS


def build_rows(items: list[Utterance], table: dict[str, np.ndarray]) -> Rows:
    n, k = len(items), len(VERSIONS)
    vectors = utterance_vectors(table["frames"], table["lengths"])
    repeat = lambda values: np.repeat(np.asarray(values), k)  # noqa: E731
    return Rows(vectors.reshape(n * k, -1), table["frames"].reshape(n * k, *table["frames"].shape[2:]),
                table["stats"].reshape(n * k, -1), repeat([u.gender == "male" for u in items]).astype(np.float32),
                repeat([u.label_index for u in items]), repeat(np.arange(n)), np.tile(np.arange(k), n))


class Standardiser:
    def __init__(self, train: np.ndarray, axis: tuple[int, ...] = (0,)) -> None:
        self.mean = train.mean(axis=axis, keepdims=True)
        self.std = train.std(axis=axis, keepdims=True) + 1e-6

    def __call__(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((values - self.mean) / self.std).astype(np.float32))


class MLP(nn.Module):
    """Dense 128-64-32-16 on the 162-value vector."""

    def __init__(self) -> None:
        super().__init__()
        sizes = (162, 128, 64, 32, 16)
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(16, len(LABELS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StackedLSTM(nn.Module):
    """LSTM 256-256-128 over the frame-level feature sequence; the last state classifies."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm1, self.lstm2 = nn.LSTM(162, 256, batch_first=True), nn.LSTM(256, 256, batch_first=True)
        self.lstm3 = nn.LSTM(256, 128, batch_first=True)
        self.drop, self.out = nn.Dropout(0.2), nn.Linear(128, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, 162, frames]
        h, _ = self.lstm1(x.transpose(1, 2))
        h, _ = self.lstm2(self.drop(h))
        h, _ = self.lstm3(self.drop(h))
        return self.out(self.drop(h[:, -1]))


class Conv1DOnVector(nn.Module):
    """The seeds' Conv1D 256-256-128-64 (train.seed.SeedCNN), returning logits for training."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = SeedCNN(len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn.logits(x)


class FusionNet(nn.Module):
    """SER-FusionNet: 32 Conv1D deep features of the vector + 6 statistics + gender, then an MLP."""

    def __init__(self) -> None:
        super().__init__()
        # the vector's positions are different features, not time: flatten, never pool them away
        self.deep = nn.Sequential(nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                                  nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                                  nn.Linear(32 * 40, 32), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(32 + 6 + 1, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, len(LABELS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, 162 + 6 + 1]
        return self.head(torch.cat([self.deep(x[:, None, :162]), x[:, 162:]], dim=1))


class SpectrogramCNN(nn.Module):
    """A small 2-D CNN on the log-mel spectrogram (mel bands averaged in pairs: 64 x 98); its 32-value
    embedding feeds gradient-boosted trees."""

    def __init__(self) -> None:
        super().__init__()

        def block(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]

        self.embed = nn.Sequential(nn.AvgPool2d((2, 1)), *block(1, 8), *block(8, 16), *block(16, 32),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(32, len(LABELS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, 128, frames]
        return self.out(self.embed(x[:, None]))


def _log_mel(frames: np.ndarray) -> np.ndarray:
    return np.log(frames[:, MEL_ROWS].astype(np.float32) + 1e-6)


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    model: Callable[[], nn.Module]
    inputs: Callable[[Rows, np.ndarray, np.ndarray], tuple[torch.Tensor, torch.Tensor]]
    """(train rows, test rows) -> standardised tensors, statistics from the training rows only."""
    epochs: int
    trees: bool = False
    """Replace the network's classifier by LightGBM on its embedding."""


def _vector_inputs(rows: Rows, train: np.ndarray, test: np.ndarray):
    scale = Standardiser(rows.vectors[train])
    return scale(rows.vectors[train]), scale(rows.vectors[test])


def _frame_inputs(rows: Rows, train: np.ndarray, test: np.ndarray):
    scale = Standardiser(rows.frames[train].astype(np.float32), axis=(0, 2))
    return scale(rows.frames[train].astype(np.float32)), scale(rows.frames[test].astype(np.float32))


def _fusion_inputs(rows: Rows, train: np.ndarray, test: np.ndarray):
    joined = np.concatenate([rows.vectors, rows.stats], axis=1)
    scale = Standardiser(joined[train])
    gender = torch.from_numpy(rows.gender)[:, None]
    return (torch.cat([scale(joined[train]), gender[train]], 1), torch.cat([scale(joined[test]), gender[test]], 1))


def _spectrogram_inputs(rows: Rows, train: np.ndarray, test: np.ndarray):
    scale = Standardiser(_log_mel(rows.frames[train]), axis=(0, 2))
    return scale(_log_mel(rows.frames[train])), scale(_log_mel(rows.frames[test]))


BASELINES = (
    Baseline("mlp", "MLP 128-64-32-16 on the 162-value vector", MLP, _vector_inputs, 60),
    Baseline("lstm", "stacked LSTM 256-256-128 on frame-level features", StackedLSTM, _frame_inputs, 8),
    Baseline("cnn1d", "Conv1D 256-256-128-64 (k5, max-pool, dropout) on the 162-value vector", Conv1DOnVector,
             _vector_inputs, 15),
    Baseline("fusionnet", "SER-FusionNet: Conv1D deep features (32) + 6 statistics + gender (oracle), MLP",
             FusionNet, _fusion_inputs, 40),
    Baseline("spec_cnn_lgbm", "spectrogram-CNN embedding (32) + LightGBM", SpectrogramCNN, _spectrogram_inputs,
             15, trees=True),
)


TABLE_ORDER = (*(b.name for b in BASELINES), "cnn_lstm")
"""The table's rows: the seeds, then the CNN-LSTM recipe on the same data (``protocols.py``)."""


def _fit(baseline: Baseline, x: torch.Tensor, y: np.ndarray, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = baseline.model()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    targets = torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(baseline.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            index = order[start:start + 64]
            loss = nn.functional.cross_entropy(model(x[index]), targets[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def _predict(baseline: Baseline, model: nn.Module, x_train: torch.Tensor, y_train: np.ndarray,
             x_test: torch.Tensor, seed: int) -> np.ndarray:
    with torch.no_grad():
        if not baseline.trees:
            return torch.cat([model(x_test[i:i + 256]) for i in range(0, len(x_test), 256)]).argmax(1).numpy()
        embed = lambda x: torch.cat([model.embed(x[i:i + 256, None]) for i in range(0, len(x), 256)]).numpy()  # noqa
        train_embedding, test_embedding = embed(x_train), embed(x_test)
    from lightgbm import LGBMClassifier

    trees = LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=15, random_state=seed, n_jobs=1,
                           verbose=-1)
    trees.fit(train_embedding, y_train)
    return trees.predict(test_embedding)


REPETITIONS = range(1, 7)
"""Seeds of the random split, and the EmoBox folds: 6 repetitions of each protocol."""


def random_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions of the seeds' protocol: ``n`` rows shuffled, 80/20, sorted."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(0.8 * n)
    return np.sort(order[:cut]), np.sort(order[cut:])


def splits(rows: Rows, items: list[Utterance], protocol: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, train rows, test rows) for the 6 repetitions of a protocol."""
    out = []
    for k in REPETITIONS:
        if protocol == "random":
            out.append((f"seed {k}", *random_split(len(rows.labels), k)))
        else:
            held_out = emobox.test_speakers(k)
            test_file = np.array([items[f].speaker in held_out for f in rows.file])
            out.append((f"fold {k}", np.flatnonzero(~test_file),
                        np.flatnonzero(test_file & (rows.version == VERSIONS.index("original")))))
    return out


def _run_key(items: list[Utterance], train: np.ndarray, test: np.ndarray) -> str:
    """This module's code, the files and the split: a finished split is reused, so a run of the slow
    baselines (hours on 2 cores) resumes where it stopped; any edit here runs everything again."""
    digest = hashlib.sha1(Path(__file__).read_bytes())
    digest.update(torch.__version__.encode())
    for item in items:
        digest.update(f"{item.path}\n".encode())
    digest.update(train.tobytes())
    digest.update(test.tobytes())
    return digest.hexdigest()[:16]


def summarise_runs(runs: list[dict]) -> dict:
    """The runs of one protocol with the mean and sample std of UA, WA and macro-F1 over them."""
    return {"runs": runs, **{f"{m}_{stat}": round(float(fn([r[m] for r in runs])), 4)
                             for m in ("ua", "wa", "macro_f1")
                             for stat, fn in (("mean", np.mean), ("std", lambda v: np.std(v, ddof=1)))}}


def empty_report(items: list[Utterance]) -> dict:
    """What ``baselines.json`` says about the data and the protocols, with no system in it yet."""
    return {"data": f"RAVDESS speech, {len(items)} files x {len(VERSIONS)} versions ({', '.join(VERSIONS)})",
            "protocols": {"random": "rows (files and their augmented copies) shuffled, 80/20, 6 seeds",
                          "actor": "EmoBox folds 1-6: 4 test actors' original files; training actors' "
                                   "files and copies"},
            "baselines": {}}


def run_baselines(items: list[Utterance], cache_dir: Path, log: Log = print,
                  names: tuple[str, ...] = tuple(b.name for b in BASELINES)) -> dict:
    torch.set_num_threads(1)
    rows = build_rows(items, seed_feature_table(items, cache_dir, log=log))
    report = empty_report(items)
    runs_dir = Path(cache_dir) / "baseline-runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for baseline in (b for b in BASELINES if b.name in names):
        entry: dict = {"description": baseline.description, "epochs": baseline.epochs}
        for protocol in ("random", "actor"):
            runs = []
            for k, (name, train, test) in enumerate(splits(rows, items, protocol), start=1):
                done = runs_dir / f"{baseline.name}-{protocol}-{k}-{_run_key(items, train, test)}.json"
                if done.exists():
                    runs.append(json.loads(done.read_text()))
                    log(f"{baseline.name} {protocol} {name}: UA {runs[-1]['ua']:.3f} (cached)")
                    continue
                began = time.monotonic()
                x_train, x_test = baseline.inputs(rows, train, test)
                model = _fit(baseline, x_train, rows.labels[train], seed=k)
                pred = _predict(baseline, model, x_train, rows.labels[train], x_test, seed=k)
                scores = evaluate(rows.labels[test], pred, LABELS)
                runs.append({"split": name, "train_rows": len(train), "test_rows": len(test),
                             **{m: round(scores[m], 4) for m in ("ua", "wa", "macro_f1")},
                             "seconds": round(time.monotonic() - began, 1)})
                done.write_text(json.dumps(runs[-1]) + "\n")
                log(f"{baseline.name} {protocol} {name}: UA {scores['ua']:.3f} ({runs[-1]['seconds']} s)")
            entry[protocol] = summarise_runs(runs)
        report["baselines"][baseline.name] = entry
    return report


def write_baselines(report: dict, results_dir: Path, cnn_lstm: dict | None = None) -> None:
    """``baselines.json`` and a markdown table: both protocols side by side, the leak made visible.

    Baselines already in ``baselines.json`` and not run this time (``--only``) are kept.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    existing = results_dir / "baselines.json"
    earlier_report = json.loads(existing.read_text()) if existing.exists() else {}
    if earlier_report.get("data") == report["data"]:  # same data: keep the baselines not run this time
        earlier = earlier_report.get("baselines", {})
        merged = {**earlier, **report["baselines"]}
        report = {**report, "baselines": {name: merged[name] for name in TABLE_ORDER if name in merged}}
    (results_dir / "baselines.json").write_text(json.dumps(report, indent=1) + "\n")
    (results_dir / "baselines.md").write_text(baselines_markdown(report, cnn_lstm))


def refresh_table(results_dir: Path, cnn_lstm: dict) -> None:
    """Rewrite ``baselines.md`` beside a new ``ravdess_cv.json``, whose numbers its last row quotes
    (the baselines themselves are not run again)."""
    saved = results_dir / "baselines.json"
    if saved.exists():
        (results_dir / "baselines.md").write_text(baselines_markdown(json.loads(saved.read_text()), cnn_lstm))


def baselines_markdown(report: dict, cnn_lstm: dict | None = None) -> str:
    cell = lambda r, m: f"{r[m + '_mean']:.3f} ± {r[m + '_std']:.3f}"  # noqa: E731
    lines = ["| system | random split after augmentation: UA | WA | by actor (6 folds): UA | WA | macro-F1 "
             "| gap (UA) |", "|---|---|---|---|---|---|---|"]
    for name, entry in report["baselines"].items():
        a, b = entry["random"], entry["actor"]
        lines.append(f"| {entry['description']} | {cell(a, 'ua')} | {cell(a, 'wa')} | **{cell(b, 'ua')}** | "
                     f"{cell(b, 'wa')} | {cell(b, 'macro_f1')} | {a['ua_mean'] - b['ua_mean']:+.3f} |")
    ours_alone = "cnn_lstm" in report["baselines"]
    if cnn_lstm and cnn_lstm.get("folds"):
        random_cell = "see the row above" if ours_alone else "not run"
        corpora = len(cnn_lstm.get("run", {}).get("corpora", ())) or "all"
        members = len(cnn_lstm.get("member_temperatures_mean", ()))
        averaged = f", {members} networks averaged" if members else ""
        lines.append(f"| this project's CNN-LSTM, trained on {corpora} corpora{averaged} ({cnn_lstm['n_folds']} "
                     f"of 6 folds) | {random_cell} | | **{cell(cnn_lstm, 'ua')}** | {cell(cnn_lstm, 'wa')} | "
                     f"{cell(cnn_lstm, 'macro_f1')} | |")
    lines += ["", report["protocols"]["random"] + ".", report["protocols"]["actor"] + "."]
    lines += [entry["note"] + "." for entry in report["baselines"].values() if "note" in entry]
    lines.append("Regenerate: `ser-train baselines` (see README).")
    return "\n".join(lines) + "\n"
