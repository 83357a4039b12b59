"""The bundled models: chosen by name, the noise-robust one holding up in noise, the phone one on
telephone audio."""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from emovox.realtime.model import Classifier, load_model_info
from emovox.realtime.pipeline import Pipeline
from emovox.realtime.settings import PipelineSettings, WindowSettings
from emovox.train.phone_line import telephone_band
from tests.conftest import RAVDESS, REPO, read_events, run_ser_live

ANGRY = RAVDESS / "Actor_01" / "03-01-05-02-01-01-01.flac"
Degrade = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(padded recording, its speech alone) -> what the runtime hears."""


def test_ser_live_takes_a_bundled_model_by_name(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    result = run_ser_live("--model", "noise-robust", "--file", str(ANGRY), "--fast", "--no-dashboard",
                          "--json", str(events))
    assert result.returncode == 0, result.stderr
    (final,) = [e for e in read_events(events) if e["type"] == "utterance_end"]
    assert final["label"] == "angry", final


def test_an_unknown_model_name_is_one_line_and_exit_2() -> None:
    result = run_ser_live("--model", "noise-robst", "--file", str(ANGRY), "--fast", "--no-dashboard")
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "noise-robst" in line and "noise-robust" in line  # names what exists


def _trained_with(metadata: dict, setting: str) -> set:
    """A training setting's values over the file's networks: an ensemble's members, or its one network."""
    return {train[setting] for train in [m["train"] for m in metadata.get("members", [])] or [metadata["train"]]}


def _ua_at_10_db(metadata: dict) -> float:
    """The cross-validated int8 UA at 10 dB SNR, white and babble noise averaged."""
    return float(np.mean([metadata["evaluation"]["int8_ua_by_snr"][kind]["10"]["ua_mean"]
                          for kind in ("white", "babble")]))


def test_the_noise_robust_model_is_the_noise_trained_one() -> None:
    """Its metadata records the noise recipe and the trade its cross-validation measured. The
    default holds one network of the same recipe among its three (#39), so the noise-robust
    model's lead at 10 dB is smaller than it was over the clean-trained defaults before
    (cross-validated: 47.1 against 37.7; the pair before had 32.8)."""
    default, robust = (load_model_info(name).metadata for name in ("default", "noise-robust"))
    assert sorted(m["train"]["noise_probability"] for m in default["members"]) == [0.0, 0.0, 0.3]
    assert robust["train"]["noise_probability"] == 0.3 and robust["train"]["noise_snr_db"] == [10.0, 30.0]
    assert _ua_at_10_db(robust) > _ua_at_10_db(default) + 0.05
    assert robust["evaluation"]["ua_mean"] < default["evaluation"]["ua_mean"]  # the clean-speech cost


@lru_cache(maxsize=3)
def _classifier(name: str) -> Classifier:
    return Classifier(load_model_info(name))


def _file_label(name: str, audio: np.ndarray) -> str:
    """The recording's label: probabilities of its utterances, weighted by their length."""
    classifier = _classifier(name)
    pipeline = Pipeline(classifier, PipelineSettings(window=WindowSettings(window_s=classifier.info.window_s)))
    events = [e.to_dict() for start in range(0, len(audio), 480) for e in pipeline.push(audio[start:start + 480])]
    ends = [e for e in events + [e.to_dict() for e in pipeline.finish()] if e["type"] == "utterance_end"]
    if not ends:
        return "none"
    total = {label: sum(e["probs"][label] * (e["t_end"] - e["t_start"]) for e in ends)
             for label in classifier.info.labels}
    return max(total, key=total.get)


def _right_answers(names: tuple[str, ...], degrade: Degrade) -> dict[str, int]:
    """Of RAVDESS actors 1-4 (statement 1, both intensities: 60 files), each padded with 1 s of
    silence on both sides and passed through ``degrade(padded, speech)``, how many each model
    labels right through the runtime."""
    files = sorted(RAVDESS.glob("Actor_0[1-4]/03-01-0?-0?-01-01-0?.flac"))
    assert len(files) == 60
    right = dict.fromkeys(names, 0)
    for path in files:
        speech, _ = sf.read(str(path), dtype="float32")
        padded = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000, np.float32)])
        heard = degrade(padded, speech)
        truth = load_model_info().labels[int(path.name.split("-")[2]) - 1]
        for name in names:
            right[name] += _file_label(name, heard) == truth
    return right


def _white_noise_at_10_db(rng: np.random.Generator) -> Degrade:
    """A ``degrade`` for ``_right_answers``: white noise 10 dB below the speech's power."""
    def degrade(padded: np.ndarray, speech: np.ndarray) -> np.ndarray:
        noise = rng.standard_normal(len(padded)).astype(np.float32) * np.sqrt(np.mean(speech ** 2) / 10)
        return np.clip(padded + noise, -1.0, 1.0)
    return degrade


def test_the_noise_robust_model_holds_up_better_in_white_noise() -> None:
    """The 60 files in white noise at 10 dB. Both models trained on these actors, so this checks the
    bundled files, not accuracy: the speaker-independent numbers are the cross-validation's
    (README, "Noise")."""
    right = _right_answers(("default", "noise-robust"), _white_noise_at_10_db(np.random.default_rng(0)))
    assert right["noise-robust"] >= right["default"] + 10, right  # measured: 47 and 35 of 60 (the pair: 26)


def test_the_phone_model_is_the_phone_trained_one() -> None:
    """Its metadata records the recipe (the line after #18's noise, experiment #23) and the trade
    its cross-validation measured."""
    default, phone = (load_model_info(name).metadata for name in ("default", "phone"))
    assert _trained_with(default, "phone_probability") == {0.0}
    assert phone["train"]["phone_probability"] == 0.3
    assert phone["train"]["noise_probability"] == 0.3 and phone["train"]["noise_snr_db"] == [10.0, 30.0]
    on_the_line = {name: m["evaluation"]["int8_ua_telephone_mean"] for name, m in (("default", default),
                                                                                   ("phone", phone))}
    assert on_the_line["phone"] > on_the_line["default"] + 0.05, on_the_line
    assert _ua_at_10_db(phone) > _ua_at_10_db(default) + 0.05  # a noisy call too (measured: 45.7 and 37.7)
    assert phone["evaluation"]["ua_mean"] < default["evaluation"]["ua_mean"]  # the clean-speech cost


def test_the_phone_model_holds_up_better_on_a_phone_line() -> None:
    """The 60 files through the benchmark's narrowband line (8 kHz, 300-3400 Hz, G.711 mu-law), as the
    runtime hears a call recording. A check of the bundled files, as above (README, "Phone lines").
    The default's window-mean member keeps more on the line than the single network shipped before
    the ensembles (40 of 60 against 36; cross-validated 43.5 against 42.0): a margin of 10 files would
    sit near the measured gap, where one file's int8 rounding on another CPU decides, so it is 6."""
    right = _right_answers(("default", "phone"), lambda padded, speech: telephone_band(padded))
    assert right["phone"] >= right["default"] + 6, right  # measured: 51 and 40 of 60 (noise-robust: 37)


def test_the_phone_model_holds_up_better_on_a_noisy_phone_line() -> None:
    """The 60 files in white noise at 10 dB, then through the line: a call from a noisy room, what
    the phone model's recipe trains for. A check of the bundled files, as above."""
    noisy = _white_noise_at_10_db(np.random.default_rng(0))
    right = _right_answers(("default", "noise-robust", "phone"),
                           lambda padded, speech: telephone_band(noisy(padded, speech)))
    assert right["phone"] >= max(right["default"], right["noise-robust"]) + 6, right  # measured: phone 38; 25, 25 of 60


def test_every_bundled_model_names_the_licence_of_each_corpus_it_learnt_from() -> None:
    """A model inherits its corpora's licences, which the code's MIT licence does not lift: the metadata
    that travels with each file says which, and the README's Licences table says the same."""
    from emovox import models
    from emovox.train.corpora import LICENCES

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Licences"):]
    files = sorted(Path(models.__file__).parent.glob("*.int8.json"))
    assert len(files) == 3
    for path in files:
        for corpus, entry in json.loads(path.read_text())["training_data"].items():
            assert entry["licence"] == LICENCES[corpus], (path.name, corpus)
    for corpus, licence in LICENCES.items():
        (row,) = [line for line in section.splitlines() if line.lower().startswith(f"| {corpus}")]
        assert row.endswith(f"| {licence} |"), row
