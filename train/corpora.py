"""Loaders for the emotional-speech corpora in their original layouts.

Each loader accepts the corpus as distributed (``.wav``) or as converted in
``../shared/data`` (``.flac``, ``.opus``), and maps its labels onto RAVDESS's
eight classes. Speakers are namespaced by corpus ("ravdess:07") so that splits
by speaker can never mix two corpora's speaker ids.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emovox.realtime.audio import Resampler, to_mono

LABELS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
AUDIO_SUFFIXES = (".wav", ".flac", ".opus", ".ogg")

RAVDESS_EMOTIONS = {f"{i:02d}": label for i, label in enumerate(LABELS, start=1)}
TESS_EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
                 "neutral": "neutral", "ps": "surprised", "sad": "sad"}
NEMO_EMOTIONS = {"anger": "angry", "fear": "fearful", "happiness": "happy", "neutral": "neutral",
                 "sadness": "sad", "surprised": "surprised"}
EMOVO_EMOTIONS = {"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fearful",
                  "rab": "angry", "sor": "surprised", "tri": "sad"}
TUREV_EMOTIONS = {"angry": "angry", "calm": "calm", "happy": "happy", "sad": "sad"}


@dataclass(frozen=True)
class Utterance:
    path: Path
    corpus: str
    speaker: str
    label: str
    gender: str | None = None
    intensity: str | None = None
    """RAVDESS only: "normal" or "strong"."""

    @property
    def label_index(self) -> int:
        return LABELS.index(self.label)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def load_ravdess(root: Path) -> list[Utterance]:
    """``Actor_NN/MM-VC-EE-II-SS-RR-AA.ext``; speech files only (vocal channel 01)."""
    items = []
    for path in _audio_files(root):
        fields = path.stem.split("-")
        if len(fields) != 7 or fields[1] != "01" or fields[2] not in RAVDESS_EMOTIONS:
            continue
        actor = int(fields[6])
        items.append(Utterance(path, "ravdess", f"ravdess:{actor:02d}", RAVDESS_EMOTIONS[fields[2]],
                               gender="male" if actor % 2 else "female",
                               intensity="normal" if fields[3] == "01" else "strong"))
    return items


def load_tess(root: Path) -> list[Utterance]:
    """``OAF_<emotion>/OAF_<word>_<emotion>.ext``: two female speakers.

    The speaker comes from the folder: a few original file names misspell it ("OA_").
    """
    items = []
    for path in _audio_files(root):
        fields = path.stem.split("_")
        emotion = fields[-1].lower()
        if len(fields) < 3 or emotion not in TESS_EMOTIONS:
            continue
        speaker = f"tess:{path.parent.name.split('_')[0].upper()}"
        items.append(Utterance(path, "tess", speaker, TESS_EMOTIONS[emotion], gender="female"))
    return items


def load_nemo(root: Path) -> list[Utterance]:
    """Flat folder plus ``data.tsv`` (file_id, emotion, speaker_id, gender)."""
    by_stem = {p.stem: p for p in _audio_files(root)}
    items = []
    with open(root / "data.tsv", newline="", encoding="utf-8") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            path = by_stem.get(Path(row["file_id"]).stem)
            emotion = row["emotion"].strip().lower()
            if path is None or emotion not in NEMO_EMOTIONS:
                continue
            items.append(Utterance(path, "nemo", f"nemo:{row['speaker_id'].strip()}", NEMO_EMOTIONS[emotion],
                                   gender=row["gender"].strip().lower() or None))
    return items


def load_emovo(root: Path) -> list[Utterance]:
    """``<speaker>/<emotion>-<speaker>-<sentence>.ext``; f* female, m* male."""
    items = []
    for path in _audio_files(root):
        fields = path.stem.split("-")
        if len(fields) != 3 or fields[0] not in EMOVO_EMOTIONS:
            continue
        speaker = fields[1].lower()
        items.append(Utterance(path, "emovo", f"emovo:{speaker}", EMOVO_EMOTIONS[fields[0]],
                               gender="female" if speaker.startswith("f") else "male"))
    return items


def load_turev(root: Path) -> list[Utterance]:
    """``<Emotion>/<speaker>_<code>_<word>.ext``."""
    items = []
    for path in _audio_files(root):
        emotion = path.parent.name.lower()
        if emotion not in TUREV_EMOTIONS:
            continue
        items.append(Utterance(path, "turev", f"turev:{path.stem.split('_')[0]}", TUREV_EMOTIONS[emotion]))
    return items


LOADERS = {"ravdess": load_ravdess, "tess": load_tess, "nemo": load_nemo, "emovo": load_emovo,
           "turev": load_turev}

LICENCES = {"ravdess": "CC BY-NC-SA 4.0", "tess": "CC BY-NC-ND 4.0", "nemo": "CC BY-NC-SA 4.0",
            "emovo": "free for research use", "turev": "CC BY-NC-ND 4.0"}
"""Each corpus's licence (``../shared/data/README.md``), written into a shipped model's metadata: a
model trained on them inherits their limits, which the code's MIT licence does not lift."""


def load_corpora(data_dir: Path, names: tuple[str, ...] = tuple(LOADERS)) -> list[Utterance]:
    """All utterances of the named corpora found under ``data_dir``."""
    items: list[Utterance] = []
    for name in names:
        folder = Path(data_dir) / name
        if not folder.is_dir():
            raise FileNotFoundError(f"corpus folder not found: {folder}")
        found = LOADERS[name](folder)
        if not found:
            raise FileNotFoundError(f"no {name} audio found under {folder}")
        items.extend(found)
    return items


def read_audio(path: Path) -> np.ndarray:
    """A whole file as 16 kHz mono float32, through the runtime's own resampler."""
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return Resampler(rate).process(to_mono(audio), last=True)
