"""Audio sources and resampling to the pipeline's 16 kHz mono."""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emovox.realtime.settings import SAMPLE_RATE


class AudioError(Exception):
    """Input audio that cannot be read: one clear line for the user."""


def to_mono(block: np.ndarray) -> np.ndarray:
    """[frames, channels] -> [frames] float32, channels averaged; NaN/Inf become silence."""
    mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block.astype(np.float32)
    if not np.isfinite(mono).all():
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return mono


class Resampler:
    """Streaming resampler to 16 kHz (soxr, high quality), a no-op at 16 kHz.

    soxr's stream keeps its filter state between calls, so block boundaries
    leave no clicks and the output does not depend on the block size.
    """

    def __init__(self, in_rate: int) -> None:
        if not 1000 <= in_rate <= 768000:
            raise AudioError(f"unsupported sample rate: {in_rate} Hz")
        self.in_rate = in_rate
        self._stream = None
        if in_rate != SAMPLE_RATE:
            import soxr

            self._stream = soxr.ResampleStream(in_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def process(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int
    format: str


def probe(path: Path) -> AudioInfo:
    """Check a file can be decoded before the run starts."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"no such file: {path}")
    if path.is_dir():
        raise AudioError(f"is a directory, not an audio file: {path}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"cannot read {path} as audio: {_first_line(error)}") from None
    if info.frames == 0:
        raise AudioError(f"{path} holds no audio (0 frames)")
    return AudioInfo(info.samplerate, info.channels, info.frames, f"{info.format}/{info.subtype}")


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


class FileSource:
    """Streams a file block by block at 16 kHz mono: constant memory for any length.

    ``realtime=True`` paces the blocks at the speed of the recording, so replay
    behaves like a microphone; otherwise blocks come as fast as they are read.
    """

    def __init__(self, path: Path, block_frames: int = 4096, realtime: bool = False) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        self.block_frames = block_frames
        self.realtime = realtime
        self.dropped_frames = 0

    def blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        resampler = Resampler(self.info.sample_rate)
        began = time.monotonic()
        read = 0
        try:
            with sf.SoundFile(str(self.path)) as audio:
                while True:
                    block = audio.read(self.block_frames, dtype="float32", always_2d=True)
                    read += len(block)
                    last = len(block) < self.block_frames
                    out = resampler.process(to_mono(block), last=last)
                    if self.realtime:
                        delay = began + read / self.info.sample_rate - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    if len(out):
                        yield out
                    if last:
                        break
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(f"cannot decode {self.path} after {self._seconds(read)}: the file is truncated "
                             f"or corrupt ({_first_line(error)})") from None
        if read < self.info.frames:  # FLAC/Ogg headers give the length; libsndfile sizes WAV by the file
            raise AudioError(f"cannot decode {self.path} after {self._seconds(read)}: the file is truncated "
                             "or corrupt (it ended early)")

    def _seconds(self, frames: int) -> str:
        return f"{frames / self.info.sample_rate:.1f} s of {self.info.frames / self.info.sample_rate:.1f} s"
