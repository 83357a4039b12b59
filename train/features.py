"""Utterance windows exactly as the runtime cuts them, and the cached log-mel front end.

The front end is fixed (never trained), so it is computed once per corpus file
and cached under ``.cache/features``; training then runs only the backbone.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from emovox.realtime.settings import VadSettings, WindowSettings
from emovox.realtime.vad import speech_span
from emovox.realtime.windowing import covering_windows, fit_to_window
from emovox.train.corpora import Utterance, read_audio
from emovox.train.model import FrontendSpec, LogMel

CACHE_VERSION = 1
DEFAULT_CACHE = Path(".cache/features")


def utterance_windows(audio: np.ndarray, vad: VadSettings, window: WindowSettings) -> np.ndarray:
    """[n_windows, window_samples]: the windows the runtime would classify for this recording."""
    start, end = speech_span(audio, vad)
    speech = audio[start:end]
    return np.stack([fit_to_window(speech[s:e], window.window_samples)
                     for s, e in covering_windows(len(speech), window)])


@lru_cache(maxsize=4)
def _logmel(spec: FrontendSpec) -> LogMel:
    """One front end per worker process, not one per file (it builds a mel filterbank)."""
    return LogMel(spec)


def _logmel_of_file(job: tuple[str, FrontendSpec, VadSettings, WindowSettings]) -> np.ndarray:
    path, spec, vad, window = job
    windows = utterance_windows(read_audio(Path(path)), vad, window)
    with torch.no_grad():
        return _logmel(spec)(torch.from_numpy(windows)).numpy().astype(np.float16)


def _cache_key(items: list[Utterance], spec: FrontendSpec, vad: VadSettings, window: WindowSettings) -> str:
    digest = hashlib.sha1()
    digest.update(json.dumps([CACHE_VERSION, asdict(spec), asdict(vad), asdict(window)]).encode())
    for item in items:
        digest.update(f"{item.path}|{item.path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def cached_logmels(items: list[Utterance], spec: FrontendSpec, vad: VadSettings, window: WindowSettings,
                   cache_dir: Path = DEFAULT_CACHE, workers: int | None = None,
                   log=print) -> tuple[np.ndarray, np.ndarray]:
    """(log-mels [n_windows, n_mels, frames] float16, owner [n_windows] -> index into ``items``)."""
    cache_dir = Path(cache_dir)
    cache_file = cache_dir / f"logmel-{_cache_key(items, spec, vad, window)}.npz"
    if cache_file.exists():
        with np.load(cache_file) as cached:
            return cached["logmel"], cached["owner"]
    workers = workers or os.cpu_count() or 1
    log(f"computing the log-mel front end for {len(items)} files on {workers} process(es)...")
    jobs = [(str(item.path), spec, vad, window) for item in items]
    with Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        per_file = pool.map(_logmel_of_file, jobs, chunksize=32)
    logmel = np.concatenate(per_file)
    owner = np.concatenate([np.full(len(f), i, dtype=np.int32) for i, f in enumerate(per_file)])
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp.npz")
    np.savez(tmp, logmel=logmel, owner=owner)
    tmp.rename(cache_file)
    log(f"cached {len(logmel)} windows in {cache_file}")
    return logmel, owner
