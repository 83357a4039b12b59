"""``--record PATH``: the only way ser-live writes audio to disk, and only when asked.

It keeps exactly what the pipeline heard (16 kHz mono, after resampling), so a
recording replays with ``--file`` to the same events. Written from the worker
thread (``runner.Worker``) as the pipeline takes each block, never from the audio callback.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from emovox.realtime.settings import SAMPLE_RATE
from emovox.realtime.errors import OutputError

FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


class Recorder:
    def __init__(self, path: Path) -> None:
        import soundfile as sf

        self.path = Path(path)
        container = FORMATS.get(self.path.suffix.lower())
        if container is None:
            raise OutputError(f"--record {self.path}: use a .wav or .flac name")
        try:
            self._file = sf.SoundFile(str(self.path), "w", SAMPLE_RATE, 1, format=container[0],
                                      subtype=container[1])
        except (OSError, sf.LibsndfileError, RuntimeError) as error:
            raise OutputError(f"cannot write {self.path}: {_reason(error)}") from None
        self.frames = 0
        self.failed = False

    def write(self, block: np.ndarray) -> None:
        import soundfile as sf

        try:
            self._file.write(np.clip(block, -1.0, 1.0))
        except (OSError, sf.LibsndfileError, RuntimeError) as error:
            self.failed = True
            raise OutputError(f"recording to {self.path} failed after {self.frames / SAMPLE_RATE:.1f} s: "
                              f"{_reason(error)}") from None
        self.frames += len(block)

    def close(self) -> None:
        """Finish the file (FLAC flush, WAV header): a failure here is reported like a failed write."""
        import soundfile as sf

        if self._file.closed:
            return
        try:
            self._file.close()
        except (OSError, sf.LibsndfileError, RuntimeError) as error:
            if not self.failed:  # a failed write was already reported
                self.failed = True
                raise OutputError(f"finishing the recording {self.path} failed: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error).strip().splitlines()[-1]
