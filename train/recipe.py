"""The end-to-end recipe: cross-validated folds, the final model on all data, export and checks."""
from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from emovox.realtime.model import DEFAULT_MODEL, metadata_path
from emovox.realtime.settings import SAMPLE_RATE, VadSettings, WindowSettings
from emovox.train import folds as emobox
from emovox.train.corpora import LABELS, LICENCES, Utterance, read_audio
from emovox.train.ensemble import ensemble_model
from emovox.train.export import ORT_DISABLED_OPTIMIZERS, export_fp32, quantize_int8
from emovox.train.factored_frontend import DESCRIPTION as FRONTEND_GRAPH
from emovox.train.features import DEFAULT_CACHE, cached_logmels, utterance_windows
from emovox.train.fit import TrainSettings, new_backbone, per_utterance, teacher_probabilities, train_backbone
from emovox.train.metrics import evaluate
from emovox.train.model import CNNLSTM, EmotionModel, FrontendSpec

Log = Callable[[str], None]

DEFAULT_STEM = DEFAULT_MODEL.removesuffix(".int8.onnx")
"""The default model's file stem: ``emotion_cnn_lstm.int8.onnx``, ``.fp32.onnx``, ``.pt``."""

SHIPPED_TRAINING = TrainSettings(class_balance="per_corpus")
"""The shipped recipe's training settings: loss weights balanced within each corpus (experiment #10
in ``benchmarks/results/experiments.md``); ``TrainSettings()`` alone is the v1 recipe."""

TEACHERS = {
    "default": SHIPPED_TRAINING,
    "noise": replace(SHIPPED_TRAINING, noise_probability=0.3, noise_snr_db=(10.0, 30.0)),
    "phone": replace(SHIPPED_TRAINING, phone_probability=0.3),
    "phone-noise": replace(SHIPPED_TRAINING, phone_probability=0.3, noise_probability=0.3, noise_snr_db=(10.0, 30.0)),
    "window-mean": replace(SHIPPED_TRAINING, window_mean=True),
    "reverb": replace(SHIPPED_TRAINING, reverb_probability=0.3),
    "speaker-adversary": replace(SHIPPED_TRAINING, speaker_adversary=0.5),
    "time-shift": replace(SHIPPED_TRAINING, time_shift_s=0.5),
    "corpus-heads": replace(SHIPPED_TRAINING, corpus_heads=True),
    "masks-4": replace(SHIPPED_TRAINING, freq_masks=4, time_masks=4),
}
"""Recipes a model can be distilled from (``ser-train --distill-from``) or averaged in an ensemble
(``--ensemble``), by experiment: ``default`` #10, ``noise`` #18 and ``phone-noise`` #23 (the
bundled models' recipes), ``phone`` #20, ``window-mean`` #24, ``reverb`` #34,
``speaker-adversary`` #43, ``time-shift`` #44, ``corpus-heads`` #45 and ``masks-4`` #48 (SpecAugment
with 4 frequency and 4 time masks instead of 2 and 2). A teacher trains at its own
settings (25 epochs, seed 0, whatever the student's) on the student's files, with the student's front
end and the shipped network shape (whatever the student's: a narrow student learns from full-width teachers);
its checkpoint is the one a plain run of that recipe on those files would write."""


SHIPPED_CHANNELS, SHIPPED_HIDDEN = (inspect.signature(CNNLSTM).parameters[name].default
                                    for name in ("channels", "hidden"))
"""The network shape every model up to #49 trained: ``CNNLSTM``'s defaults, (16, 32, 48) and 64."""


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the shipped model."""

    frontend: FrontendSpec = field(default_factory=FrontendSpec)
    vad: VadSettings = field(default_factory=VadSettings)
    window: WindowSettings = field(default_factory=WindowSettings)
    train: TrainSettings = SHIPPED_TRAINING
    calibration_files: int = 200
    """Training files whose windows calibrate the static int8 activations."""
    left_out_of_training: tuple[str, ...] = ()
    """Corpora loaded (RAVDESS is still tested) but never trained on: an experiment, e.g. TESS out."""
    teachers: tuple[TrainSettings, ...] = ()
    """Training settings of the models this one is distilled from (``TrainSettings.distill_weight``):
    each is trained, or reloaded, on the very same files first, so a fold's teachers never saw its
    test or validation actors."""
    channels: tuple[int, int, int] = SHIPPED_CHANNELS
    """The three conv blocks' channels (``ser-train --channels``): narrower networks cost less per window,
    so more of them fit an ensemble's time (#50)."""
    hidden: int = SHIPPED_HIDDEN
    """The LSTM's units per direction (``ser-train --hidden``)."""

    @property
    def network(self) -> dict:
        """The ``CNNLSTM`` shape arguments this recipe trains and exports."""
        return {"channels": tuple(self.channels), "hidden": self.hidden}

    def trainable(self, items: list[Utterance], selected: list[int]) -> list[int]:
        """The selected utterances this recipe may train on."""
        return [i for i in selected if items[i].corpus not in self.left_out_of_training]


def ensemble_member(name: str, seed: int, epochs: int = SHIPPED_TRAINING.epochs, threads: int = 1,
                    corpus_heads: bool = False, channels: tuple[int, int, int] = SHIPPED_CHANNELS,
                    hidden: int = SHIPPED_HIDDEN) -> Recipe:
    """A ``ser-train --ensemble`` member: the named preset at the run's seed, epochs and network shape,
    with per-corpus heads where the run asks for them (``--corpus-heads``). One definition, so that
    scripts training members outside ``ser-train`` (threads apart) write the checkpoints it reuses."""
    train = replace(TEACHERS[name], epochs=epochs, seed=seed, threads=threads)
    return Recipe(train=replace(train, corpus_heads=True) if corpus_heads else train, channels=tuple(channels),
                  hidden=hidden)


@dataclass
class Corpus:
    """Utterances with their cached log-mel windows."""

    items: list[Utterance]
    logmel: np.ndarray
    owner: np.ndarray

    def windows_of(self, selected: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log-mels, window labels, owner re-indexed into ``selected``) for these utterances."""
        position = np.full(len(self.items), -1)
        position[selected] = np.arange(len(selected))
        mask = position[self.owner] >= 0
        owner = position[self.owner[mask]]
        labels = np.array([self.items[selected[o]].label_index for o in owner], dtype=np.int64)
        return self.logmel[mask], labels, owner


def load_corpus(items: list[Utterance], recipe: Recipe, cache_dir: Path, log: Log) -> Corpus:
    logmel, owner = cached_logmels(items, recipe.frontend, recipe.vad, recipe.window, cache_dir, log=log)
    return Corpus(items, logmel, owner)


TRAINING_CODE = ("fit.py", "model.py", "phone_line.py")
"""The modules that turn cached features into weights: part of every checkpoint's identity."""
ROOM_CODE = "room_reverb.py"
"""Part of the identity of a checkpoint whose recipe (or a teacher's) trains in emulated rooms only,
so that the keys of every recipe trained before rooms existed stay as they were."""
ADVERSARY_CODE = "speaker_adversary.py"
"""Likewise, for a recipe (or a teacher) trained against a speaker adversary."""
CORPUS_HEADS_CODE = "corpus_heads.py"
"""Likewise, for a recipe (or a teacher) trained with per-corpus output heads."""


def training_code(recipe: Recipe) -> tuple[str, ...]:
    """The modules whose bytes a checkpoint of ``recipe`` depends on."""
    trainings = (recipe.train, *recipe.teachers)
    rooms = any(train.reverb_probability for train in trainings)
    adversary = any(train.speaker_adversary for train in trainings)
    heads = any(train.corpus_heads for train in trainings)
    return (TRAINING_CODE + ((ROOM_CODE,) if rooms else ()) + ((ADVERSARY_CODE,) if adversary else ())
            + ((CORPUS_HEADS_CODE,) if heads else ()))


def checkpoint_key(recipe: Recipe, items: list[Utterance], selected: list[int]) -> str:
    """Recipe settings, training code and the selected files: an edited training loop never
    reuses a checkpoint trained by the old one. The thread count is left out: it is how a run
    uses the machine, not what it learns (runs at different counts can still drift apart
    through float rounding), so folds trained side by side at one thread each serve a later
    run at two."""
    settings = asdict(recipe)
    for train in (settings["train"], *settings["teachers"]):
        del train["threads"]
    if recipe.network == {"channels": SHIPPED_CHANNELS, "hidden": SHIPPED_HIDDEN}:
        del settings["channels"], settings["hidden"]  # so every checkpoint from before #50 keeps its key
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode())
    for name in training_code(recipe):
        digest.update((Path(__file__).parent / name).read_bytes())
    for i in selected:
        digest.update(str(items[i].path).encode())
    return digest.hexdigest()[:16]


def window_corpora(corpus: Corpus, selected: list[int], owner: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each window's corpus, as an index into the sorted names of the selected files' corpora."""
    names = sorted({corpus.items[i].corpus for i in selected})
    return np.array([names.index(corpus.items[i].corpus) for i in selected], dtype=np.int64)[owner], names


def window_genders(corpus: Corpus, selected: list[int], owner: np.ndarray) -> np.ndarray:
    """Each window's speaker sex: 0 female, 1 male, -1 unknown (TurEV)."""
    code = {"female": 0, "male": 1}
    return np.array([code.get(corpus.items[i].gender, -1) for i in selected], dtype=np.int8)[owner]


def window_speakers(corpus: Corpus, selected: list[int], owner: np.ndarray) -> np.ndarray:
    """Each window's speaker as "corpus/speaker" (speaker names are only unique within a corpus)."""
    return np.array([f"{corpus.items[i].corpus}/{corpus.items[i].speaker}" for i in selected])[owner]


def train_on(corpus: Corpus, selected: list[int], recipe: Recipe, cache_dir: Path, log: Log) -> CNNLSTM:
    """Train (or reload the identical earlier run's checkpoint) on the selected utterances."""
    checkpoint = Path(cache_dir) / "checkpoints" / f"backbone-{checkpoint_key(recipe, corpus.items, selected)}.pt"
    model = new_backbone(len(LABELS), recipe.train, recipe.frontend, recipe.network)
    if checkpoint.exists():
        log(f"reusing {checkpoint}")
        model.load_state_dict(torch.load(checkpoint))
        return model.eval()
    if recipe.teachers and not recipe.train.distill_weight:
        raise ValueError("a recipe with teachers needs a distill_weight")
    teachers = [train_on(corpus, selected, replace(recipe, train=replace(settings, threads=recipe.train.threads),
                                                   teachers=(), channels=SHIPPED_CHANNELS, hidden=SHIPPED_HIDDEN),
                         cache_dir, log)
                for settings in recipe.teachers]
    logmel, labels, owner = corpus.windows_of(selected)
    soft = teacher_probabilities(teachers, logmel, recipe.train.distill_temperature) if teachers else None
    log(f"training on {len(selected)} files ({len(logmel)} windows)"
        + (f", distilled from {len(teachers)} teachers" if teachers else ""))
    corpus_ids, names = window_corpora(corpus, selected, owner)
    model = train_backbone(logmel, labels, len(LABELS), recipe.train, recipe.frontend, log, corpus_ids, names,
                           network=recipe.network, teacher_probs=soft, genders=window_genders(corpus, selected, owner),
                           speakers=window_speakers(corpus, selected, owner))
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), checkpoint)
    return model


def full_model(backbone: CNNLSTM, recipe: Recipe, temperature: float = 1.0) -> EmotionModel:
    """The backbone behind the fixed front end, softmax at ``temperature``: the graph that is exported."""
    model = EmotionModel(recipe.frontend, len(LABELS), window_mean=recipe.train.window_mean)
    model.backbone = new_backbone(len(LABELS), recipe.train, recipe.frontend, recipe.network)
    model.backbone.load_state_dict(backbone.state_dict())
    model.temperature.fill_(temperature)
    return model.eval()


def recording_windows(recordings: list[np.ndarray], recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Waveform windows (the ONNX input) of whole recordings, cut as the runtime cuts them, and
    their owner index."""
    per_file = [utterance_windows(audio, recipe.vad, recipe.window) for audio in recordings]
    owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(per_file)])
    return np.concatenate(per_file), owner


def raw_windows(items: list[Utterance], recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """``recording_windows`` of files read afresh."""
    return recording_windows([read_audio(u.path) for u in items], recipe)


def onnx_probs(model_path: Path, windows: np.ndarray) -> np.ndarray:
    """Run the exported file exactly as the runtime does (one thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=ORT_DISABLED_OPTIMIZERS)
    return np.concatenate([session.run(None, {"audio": windows[i:i + 64]})[0] for i in range(0, len(windows), 64)])


def torch_probs(model: EmotionModel, windows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(windows[i:i + 64])).numpy()
                               for i in range(0, len(windows), 64)])


def parity(model: EmotionModel, int8_path: Path, items: list[Utterance], recipe: Recipe) -> dict:
    """Top-1 agreement per file between the int8 ONNX file and PyTorch on the same waveforms."""
    windows, owner = raw_windows(items, recipe)
    reference = per_utterance(torch_probs(model, windows), owner, len(items))
    quantized = per_utterance(onnx_probs(int8_path, windows), owner, len(items))
    same = reference.argmax(1) == quantized.argmax(1)
    truth = np.array([u.label_index for u in items])
    return {"files": len(items), "same_top1": round(float(same.mean()), 4),
            "max_abs_prob_diff": round(float(np.abs(reference - quantized).max()), 4),
            "int8": evaluate(truth, quantized.argmax(1), LABELS),
            "pytorch": evaluate(truth, reference.argmax(1), LABELS)}


def export_model(model: EmotionModel, out_dir: Path, stem: str, calibration_items: list[Utterance],
                 recipe: Recipe) -> tuple[Path, Path]:
    """Write ``stem.fp32.onnx`` and ``stem.int8.onnx``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out_dir / f"{stem}.fp32.onnx", out_dir / f"{stem}.int8.onnx"
    export_fp32(model, fp32, recipe.window.window_samples)
    calibration, _ = raw_windows(calibration_items, recipe)
    quantize_int8(fp32, int8, calibration)
    return fp32, int8


def calibration_items(items: list[Utterance], count: int, seed: int) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    return [items[i] for i in sorted(rng.choice(len(items), size=min(count, len(items)), replace=False))]


def training_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def describe_data(items: list[Utterance]) -> dict:
    """Per corpus trained on: files, speakers and licence (the model inherits the licences' limits)."""
    corpora: dict[str, dict] = {}
    for u in items:
        entry = corpora.setdefault(u.corpus, {"files": 0, "speakers": set()})
        entry["files"] += 1
        entry["speakers"].add(u.speaker)
    return {name: {"files": e["files"], "speakers": len(e["speakers"]), "licence": LICENCES[name]}
            for name, e in corpora.items()}


TEMPERATURE_SOURCE = ("mean over the cross-validation folds of the temperature fitted on each fold's validation "
                      "actors (utterance-level NLL)")


def ship(corpus: Corpus, recipes: Sequence[Recipe], evaluation: dict, out_dir: Path,
         cache_dir: Path = DEFAULT_CACHE, log: Log = print, commit: str | None = None,
         name: str = DEFAULT_STEM) -> dict:
    """Train on every file, export at the cross-validated temperature, check parity, write metadata.

    ``recipes``: one recipe, or an ensemble's members, each trained on every file and tempered at
    its own mean fitted temperature inside one graph (``ensemble.ensemble_model``).
    ``evaluation`` is the cross-validation result (``crossval.cross_validate``): its numbers
    go into the metadata, and its mean validation-fitted temperatures calibrate the file.
    ``commit``: the work tree's commit as it was before the cross-validation wrote its results.
    ``name``: the files' stem, ``name.int8.onnx`` and so on (a second bundled model has its own).
    """
    commit = commit or training_commit()  # read before the run wrote anything into the work tree
    items, recipe = corpus.items, recipes[0]  # members share the front end and the windowing
    log("training the shipped model on all data")
    members = [train_on(corpus, member.trainable(items, list(range(len(items)))), member, cache_dir, log)
               for member in recipes]
    temperature = float(evaluation.get("temperature_mean", 1.0))
    if len(members) == 1:
        model = full_model(members[0], recipe, temperature)
        graph = {"output": "probs: float32[batch, labels], softmax(logits / temperature) (log-mel front end "
                           "inside the graph)",
                 "temperature": temperature, "temperature_source": TEMPERATURE_SOURCE,
                 "train": asdict(recipe.train), "network": recipe.network}
    else:
        temperatures = [float(t) for t in evaluation["member_temperatures_mean"]]
        model = ensemble_model(recipe.frontend, members, temperatures, temperature)
        graph = {"output": "probs: float32[batch, labels], softmax(log(p) / temperature), p the mean over the "
                           "members of softmax(member logits / member temperature) (one log-mel front end "
                           "inside the graph)",
                 "temperature": temperature,
                 "temperature_source": f"the ensemble's and each member's: the {TEMPERATURE_SOURCE} (the "
                                       "ensemble's fitted on its tempered members' mean)",
                 "members": [{"train": asdict(member.train), "network": member.network, "temperature": t}
                             for member, t in zip(recipes, temperatures)]}
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.backbone.state_dict(), out_dir / f"{name}.pt")  # the PyTorch reference for parity checks
    fp32, int8 = export_model(model, out_dir, name, calibration_items(items, recipe.calibration_files,
                                                                      recipe.train.seed), recipe)
    parity_items = [u for u in items if u.speaker in emobox.test_speakers(1)] or items[:50]
    shipped_parity = parity(model, int8, parity_items, recipe)
    metadata = {
        "name": name, "labels": list(LABELS), "sample_rate": SAMPLE_RATE,
        "window_samples": recipe.window.window_samples, "window_s": recipe.window.window_s,
        "input": "audio: float32[batch, window_samples], raw 16 kHz mono waveform",
        **graph,  # what the file outputs, its temperatures and its training settings
        "ort_disabled_optimizers": ORT_DISABLED_OPTIMIZERS,
        "frontend": asdict(recipe.frontend), "frontend_graph": FRONTEND_GRAPH, "vad": asdict(recipe.vad),
        "teachers": [asdict(settings) for settings in recipe.teachers],
        "quantization": "static QDQ int8 Conv except the first (per-channel weights, MinMax-calibrated on "
                        f"{recipe.calibration_files} training files), dynamic int8 LSTM/MatMul/Gemm, "
                        "float log-mel front end",
        "training_data": describe_data(items),
        "evaluation": evaluation,
        "shipped_parity": {k: shipped_parity[k] for k in ("files", "same_top1", "max_abs_prob_diff")},
        "sizes_bytes": {"int8": int8.stat().st_size, "fp32": fp32.stat().st_size},
        "training_commit": commit,
    }
    metadata_path(int8).write_text(json.dumps(metadata, indent=1) + "\n")
    metadata_path(fp32).write_text(json.dumps(metadata, indent=1) + "\n")
    log(f"wrote {int8} ({int8.stat().st_size} bytes) and {metadata_path(int8)}")
    return metadata
