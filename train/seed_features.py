"""The seed systems' inputs, computed once and cached: 2.5 s at a 0.6 s offset, three versions per
file (original, additive noise, time-stretch + pitch-shift), as their published notebooks did.

Per version: the 162-value utterance vector, the frame-level sequence of the same 162 features
(for the stacked LSTM), a log-mel spectrogram (for the spectrogram CNN) and the six statistics
SER-FusionNet fuses (waveform mean, variance, kurtosis, skewness, mean spectral centroid and
bandwidth). Augmented copies keep their source file's index, so a split by actor can never put
a copy of a test recording into training.
"""
from __future__ import annotations

import hashlib
import os
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from emovox.train.corpora import Utterance, read_audio
from emovox.train.seed import SEED_SAMPLE_RATE

VERSIONS = ("original", "noise", "stretch_pitch")
OFFSET_S, DURATION_S = 0.6, 2.5
FRAMES = 98  # librosa's default hop (512), centred frames: 2.5 s -> 79, the 0.8x-stretched 3.125 s -> 98
CACHE_VERSION = 2


def seed_clip(audio: np.ndarray) -> np.ndarray:
    """``librosa.load(path, duration=2.5, offset=0.6)``: may be shorter for short files."""
    start = int(OFFSET_S * SEED_SAMPLE_RATE)
    return audio[start:start + int(DURATION_S * SEED_SAMPLE_RATE)]


def augmented(clip: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The seeds' three versions: as is; + noise at 0-3.5 % of the peak; stretched 0.8x then +0.7 semitone."""
    import librosa

    noise = clip + 0.035 * rng.uniform() * np.max(np.abs(clip)) * rng.standard_normal(len(clip))
    stretched = librosa.effects.time_stretch(clip, rate=0.8)
    pitched = librosa.effects.pitch_shift(stretched, sr=SEED_SAMPLE_RATE, n_steps=0.7)
    return {"original": clip, "noise": noise.astype(np.float32), "stretch_pitch": pitched.astype(np.float32)}


def frame_features(clip: np.ndarray) -> np.ndarray:
    """[162, frames]: ZCR, chroma (12), MFCC (20), RMS, mel power (128) per frame."""
    import librosa

    stft = np.abs(librosa.stft(clip))
    return np.concatenate([
        librosa.feature.zero_crossing_rate(y=clip),
        librosa.feature.chroma_stft(S=stft, sr=SEED_SAMPLE_RATE),
        librosa.feature.mfcc(y=clip, sr=SEED_SAMPLE_RATE, n_mfcc=20),
        librosa.feature.rms(y=clip),
        librosa.feature.melspectrogram(y=clip, sr=SEED_SAMPLE_RATE),
    ]).astype(np.float32)


def statistics(clip: np.ndarray) -> np.ndarray:
    """SER-FusionNet's six: waveform mean, variance, kurtosis, skewness; mean spectral centroid, bandwidth."""
    import librosa
    from scipy.stats import kurtosis, skew

    return np.array([clip.mean(), clip.var(), kurtosis(clip), skew(clip),
                     librosa.feature.spectral_centroid(y=clip, sr=SEED_SAMPLE_RATE).mean(),
                     librosa.feature.spectral_bandwidth(y=clip, sr=SEED_SAMPLE_RATE).mean()], dtype=np.float32)


def _fixed_frames(features: np.ndarray) -> np.ndarray:
    out = np.zeros((features.shape[0], FRAMES), np.float32)
    n = min(FRAMES, features.shape[1])
    out[:, :n] = features[:, :n]
    return out


def _file_features(job: tuple[int, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index, path = job
    rng = np.random.default_rng(index)  # same copies on every run, any worker count
    versions = augmented(seed_clip(read_audio(Path(path))), rng)
    frames = [_fixed_frames(frame_features(versions[v])) for v in VERSIONS]
    stats = [statistics(versions[v]) for v in VERSIONS]
    return np.stack(frames).astype(np.float16), np.stack(stats), np.array([len(versions[v]) for v in VERSIONS])


def seed_feature_table(items: list[Utterance], cache_dir: Path, workers: int | None = None,
                       log=print) -> dict[str, np.ndarray]:
    """Arrays over (file, version): ``frames`` [n, 3, 162, 98] float16, zero after a clip's own frames
    (vector = mean over its valid frames, all of them, as the seeds averaged),
    ``stats`` [n, 3, 6], ``lengths`` [n, 3] samples."""
    import librosa

    settings = [CACHE_VERSION, VERSIONS, OFFSET_S, DURATION_S, FRAMES, SEED_SAMPLE_RATE, librosa.__version__]
    digest = hashlib.sha1(repr(settings).encode())
    for item in items:
        digest.update(f"{item.path}|{item.path.stat().st_size}\n".encode())
    cache_file = Path(cache_dir) / f"seed-{digest.hexdigest()[:16]}.npz"
    if cache_file.exists():
        with np.load(cache_file) as cached:
            return dict(cached)
    workers = workers or os.cpu_count() or 1
    log(f"computing the seed systems' features for {len(items)} files x {len(VERSIONS)} versions...")
    with Pool(workers) as pool:
        rows = pool.map(_file_features, [(i, str(u.path)) for i, u in enumerate(items)], chunksize=16)
    table = {"frames": np.stack([r[0] for r in rows]), "stats": np.stack([r[1] for r in rows]),
             "lengths": np.stack([r[2] for r in rows])}
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache_file.with_suffix(".tmp.npz"), **table)
    cache_file.with_suffix(".tmp.npz").rename(cache_file)
    return table


def utterance_vectors(frames: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The 162-value vectors: each feature's mean over the frames the clip really has."""
    valid = np.minimum(1 + lengths // 512, FRAMES)
    mask = np.arange(FRAMES)[None, None, :] < valid[..., None]
    sums = (frames.astype(np.float32) * mask[:, :, None, :]).sum(-1)
    return sums / valid[..., None]
