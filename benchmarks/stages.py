"""Per-stage scenarios: resampling, webrtcvad, and the classifier against its baselines."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emovox.benchmarks.timing import stats, time_calls
from emovox.realtime.audio import Resampler
from emovox.realtime.vad import to_pcm16


@dataclass(frozen=True)
class Case:
    """One classifier scenario: what runs, on how many threads, how many windows per call."""

    system: str
    threads: int
    batch: int
    provider: str = "CPU"

    @property
    def name(self) -> str:
        return f"{self.system} {self.provider} {self.threads}t b{self.batch}"


def resample_per_second(runs: int) -> dict:
    """48 kHz -> 16 kHz, one second of audio in 30 ms blocks, as a microphone delivers it."""
    audio = (np.random.default_rng(0).standard_normal(48000) * 0.1).astype(np.float32)
    blocks = [audio[i:i + 1440] for i in range(0, len(audio), 1440)]
    resampler = Resampler(48000)

    def one_second() -> None:
        for block in blocks:
            resampler.process(block)

    return stats(time_calls(one_second, runs))


def vad_per_frame(speech: np.ndarray, runs: int) -> dict:
    """webrtcvad on one 30 ms frame of real speech (mode 2)."""
    import webrtcvad

    vad = webrtcvad.Vad(2)
    frames = [to_pcm16(speech[i:i + 480]) for i in range(0, len(speech) - 480, 480)]
    index = iter(range(10**9))
    return stats(time_calls(lambda: vad.is_speech(frames[next(index) % len(frames)], 16000), runs))


def onnx_runner(path: Path, threads: int, provider: str = "CPU") -> Callable[[np.ndarray], object]:
    """The runtime's own Classifier, configured exactly as ser-live configures it."""
    from emovox.realtime.model import Classifier, load_model_info

    return Classifier(load_model_info(path), threads=threads, gpu=provider == "CUDA").predict


def torch_runner(weights: Path, meta: dict, threads: int) -> Callable[[np.ndarray], object]:
    """The PyTorch model that ``weights`` and the shipped file's metadata ``meta`` describe."""
    import torch

    from emovox.train.ensemble import shipped_model

    torch.set_num_threads(threads)
    model = shipped_model(meta, weights)

    def run(batch: np.ndarray) -> object:
        with torch.no_grad():
            return model(torch.from_numpy(batch))

    return run


def seed_runner(threads: int) -> Callable[[np.ndarray], object]:
    """librosa's 162-value vector per window, then the seed 1-D CNN (PyTorch)."""
    import torch

    from emovox.train.seed import SeedCNN, seed_features

    torch.set_num_threads(threads)
    model = SeedCNN().eval()

    def run(batch: np.ndarray) -> object:
        vectors = np.stack([seed_features(window) for window in batch])
        with torch.no_grad():
            return model(torch.from_numpy(vectors))

    return run


def classifier_cases(pytorch: bool, seed_style: bool, cuda: bool, other_int8: Sequence[str] = ()) -> list[Case]:
    """The grid: each available system x (1 thread, all threads) x (batch 1, batch 8), plus CUDA.

    ``other_int8``: the other bundled int8 files ("int8-noise-robust", ...), on one thread, right
    after the default's cases (the same network with other weights: their ratios should be 1).
    """
    all_threads = os.cpu_count() or 1
    thread_options = sorted({1, all_threads})
    grid = [("int8", thread_options), *((system, [1]) for system in other_int8), ("fp32", thread_options)]
    grid += [(system, thread_options) for system, wanted in (("pytorch", pytorch), ("seed-style", seed_style))
             if wanted]
    cases = [Case(system, t, b) for system, threads in grid for t in threads for b in (1, 8)]
    if cuda:
        cases += [Case(s, 1, b, "CUDA") for s in ("int8", "fp32") for b in (1, 8)]
    return cases


def time_case(run: Callable[[np.ndarray], object], windows: np.ndarray, batch: int, runs: int) -> np.ndarray:
    """Per-window milliseconds (a batch's time divided by its size), cycling through real windows."""
    batches = [windows[(i * batch + np.arange(batch)) % len(windows)] for i in range(max(1, len(windows) // batch))]
    counter = iter(range(10**9))
    per_call = time_calls(lambda: run(batches[next(counter) % len(batches)]), runs, warmup=min(20, runs))
    return per_call / batch
