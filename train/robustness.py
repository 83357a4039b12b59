"""UA against signal-to-noise ratio: white noise and babble (a mixture of other actors' speech).

The noise is added to the whole recording and the noisy recording goes through the runtime's
own segmentation and windowing, as it would live: at low SNR the VAD hears the noise too.
The SNR is measured against the speech power inside the clean recording's speech span.
A telephone line is the other condition a call centre meets: narrowband, companded audio; a
reverberant room the one a desk or laptop microphone meets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from emovox.realtime.vad import speech_span
from emovox.train.corpora import LABELS, Utterance, read_audio
from emovox.train.fit import BABBLE_TALKERS, per_utterance
from emovox.train.metrics import evaluate
from emovox.train.phone_line import telephone_band
from emovox.train.room_reverb import BENCHMARK_DISTANCE_M, BENCHMARK_ROOM_M3, BENCHMARK_RT60_S, \
    direct_to_reverberant_db, reverberate

SNRS_DB = (20, 10, 5, 0)


def _looped(clip: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    reps = -(-(n + len(clip)) // len(clip))
    start = int(rng.integers(0, len(clip)))
    return np.tile(clip, reps)[start:start + n]


def babble(n: int, talkers: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``BABBLE_TALKERS`` different recordings, each at unit power, summed."""
    chosen = rng.choice(len(talkers), size=BABBLE_TALKERS, replace=False)
    mixture = np.zeros(n)
    for i in chosen:
        clip = talkers[i]
        mixture += _looped(clip / (np.sqrt(np.mean(clip ** 2)) + 1e-12), n, rng)
    return mixture


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float, span: tuple[int, int]) -> np.ndarray:
    """``speech`` plus ``noise`` scaled so that speech power (over ``span``) / noise power = ``snr_db``."""
    speech_power = np.mean(speech[span[0]:span[1]] ** 2) + 1e-12
    noise_power = np.mean(noise ** 2) + 1e-12
    return (speech + noise * np.sqrt(speech_power / noise_power / 10 ** (snr_db / 10))).astype(np.float32)


def int8_ua(model_path: Path, recordings: list[np.ndarray], truth: np.ndarray, recipe) -> float:
    """UA of an int8 file on whole recordings, cut into windows as the runtime cuts them."""
    from emovox.train.recipe import onnx_probs, recording_windows

    windows, owner = recording_windows(recordings, recipe)
    probs = per_utterance(onnx_probs(model_path, windows), owner, len(recordings))
    return round(evaluate(truth, probs.argmax(1), LABELS)["ua"], 4)


def ua_on_telephone_band(model_path: Path, clean: list[np.ndarray], truth: np.ndarray, recipe) -> float:
    """UA of one fold's int8 model on its test actors' recordings (``clean``) sent through a phone line."""
    return int8_ua(model_path, [telephone_band(audio) for audio in clean], truth, recipe)


def ua_in_rooms(model_path: Path, clean: list[np.ndarray], truth: np.ndarray, recipe, seed: int) -> dict[str, float]:
    """{"0.3"|"0.6"|"0.9": UA} for one fold's int8 model on its test actors' recordings (``clean``)
    recorded in the benchmark's rooms of that RT60 (s): each recording convolved with its own drawn
    impulse response, then segmented and windowed as the runtime would."""
    rng = np.random.default_rng(seed)
    out = {}
    for rt60 in BENCHMARK_RT60_S:
        drr = direct_to_reverberant_db(rt60, BENCHMARK_ROOM_M3, BENCHMARK_DISTANCE_M)
        rooms = [reverberate(audio, rt60, drr, recipe.frontend.sample_rate, rng) for audio in clean]
        out[str(rt60)] = int8_ua(model_path, rooms, truth, recipe)
    return out


def ua_against_snr(model_path: Path, clean: list[np.ndarray], truth: np.ndarray, talker_items: list[Utterance],
                   recipe, seed: int) -> dict[str, dict[str, float]]:
    """{"white"|"babble": {"clean"|"20"|...: UA}} for one fold's int8 model on its test actors'
    recordings (``clean``, labels ``truth``).

    ``talker_items`` (other actors' files: never the test actors) make up the babble.
    """
    rng = np.random.default_rng(seed)
    talkers = [read_audio(u.path) for u in talker_items]
    spans = [speech_span(audio, recipe.vad) for audio in clean]

    clean_ua = int8_ua(model_path, clean, truth, recipe)
    out: dict[str, dict[str, float]] = {}
    for kind in ("white", "babble"):
        out[kind] = {"clean": clean_ua}
        for snr in SNRS_DB:
            noisy = [mix(audio, rng.standard_normal(len(audio)) if kind == "white" else
                         babble(len(audio), talkers, rng), snr, span) for audio, span in zip(clean, spans)]
            out[kind][str(snr)] = int8_ua(model_path, noisy, truth, recipe)
    return out


def summarise_snr(per_fold: list[dict[str, dict[str, float]]]) -> dict:
    """Mean and sample std (ddof=1) over folds per noise and SNR."""
    out: dict = {}
    for kind in per_fold[0]:
        out[kind] = {level: {"ua_mean": round(float(np.mean([f[kind][level] for f in per_fold])), 4),
                             "ua_std": round(float(np.std([f[kind][level] for f in per_fold],
                                                          ddof=1 if len(per_fold) > 1 else 0)), 4)}
                     for level in per_fold[0][kind]}
    return out


def plot_snr(summary: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.0, 3.6))
    for kind, levels in summary.items():
        names = list(levels)
        axes.errorbar(range(len(names)), [levels[n]["ua_mean"] for n in names],
                      yerr=[levels[n]["ua_std"] for n in names], marker="o", capsize=3, label=f"{kind} noise")
        axes.set_xticks(range(len(names)), [n if n == "clean" else f"{n} dB" for n in names])
    axes.axhline(1 / len(LABELS), color="grey", linestyle=":", label="chance")
    axes.set_ylabel("UA (mean ± std over the folds)")
    axes.set_xlabel("signal-to-noise ratio")
    axes.set_ylim(0, 1)
    axes.legend()
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
