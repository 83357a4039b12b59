"""Live capture: sounddevice (PortAudio) input at the device's native rate."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from emovox.realtime.audio import AudioError, Resampler, to_mono

PORTAUDIO_INSTALL = ("PortAudio library not found: install it (Debian/Ubuntu: sudo apt install libportaudio2; "
                     "Fedora: sudo dnf install portaudio; macOS: brew install portaudio)")


def _sounddevice() -> Any:
    """Import sounddevice lazily: --file replay must work without PortAudio."""
    try:
        import sounddevice
    except OSError:
        raise AudioError(PORTAUDIO_INSTALL) from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    default_rate: float
    is_default: bool


def input_devices() -> list[InputDevice]:
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except sd.PortAudioError as error:
        raise AudioError(f"cannot list audio devices: {error}") from None
    return [InputDevice(i, d["name"], d["max_input_channels"], d["default_samplerate"], i == default_in)
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def describe_devices(devices: list[InputDevice]) -> str:
    """The --list-devices table: index, name, channels, default rate; '*' marks the default."""
    if not devices:
        return "no audio input devices found"
    rows = [f"{'*' if d.is_default else ' '} {d.index:3d}  {d.name}  ({d.channels} ch, {d.default_rate:.0f} Hz)"
            for d in devices]
    return "\n".join(rows)


def resolve_device(spec: str | None, devices: list[InputDevice]) -> InputDevice:
    """An index, a (case-insensitive) name substring, or None for the default input."""
    if not devices:
        raise AudioError("no audio input device found (is a microphone connected?)")
    known = "; ".join(f"{d.index}: {d.name}" for d in devices)
    if spec is None:
        for device in devices:
            if device.is_default:
                return device
        return devices[0]
    if spec.strip().isdigit():
        for device in devices:
            if device.index == int(spec):
                return device
        raise AudioError(f"no input device with index {spec}; input devices: {known}")
    matches = [d for d in devices if spec.lower() in d.name.lower()]
    exact = [d for d in matches if d.name.lower() == spec.lower()]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise AudioError(f"no input device matches {spec!r}; input devices: {known}")
    names = "; ".join(f"{d.index}: {d.name}" for d in matches)
    raise AudioError(f"{spec!r} matches several input devices ({names}): give an index")


class MicSource:
    """Blocks of 16 kHz mono from a live input device.

    The PortAudio callback only copies each block into a bounded queue: it never
    computes and never blocks. When the queue is full the block is dropped and
    counted (``dropped_frames``), as are PortAudio's own input overflows.
    """

    realtime = True
    """Audio arrives at the speed it is spoken (the worker may skip interim windows to keep up)."""

    def __init__(self, device: InputDevice, block_ms: int = 30, queue_seconds: float = 10.0) -> None:
        self.device = device
        self.rate = self._usable_rate(device)
        self.block_frames = max(1, int(self.rate * block_ms / 1000))
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(4, int(queue_seconds * 1000 / block_ms)))
        self.dropped_frames = 0
        self.overflows = 0
        self.stop_requested = threading.Event()
        self.error: str | None = None

    @staticmethod
    def _usable_rate(device: InputDevice) -> int:
        sd = _sounddevice()
        candidates = [int(device.default_rate), 48000, 44100, 16000, 32000, 22050, 96000, 8000]
        for rate in dict.fromkeys(candidates):
            try:
                sd.check_input_settings(device=device.index, samplerate=rate, channels=1, dtype="float32")
                return rate
            except Exception:  # PortAudio reports an unusable setting with various exception types
                continue
        raise AudioError(f"input device {device.index} ({device.name}) cannot open at any usable sample rate")

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.dropped_frames += frames

    def _finished(self) -> None:
        if not self.stop_requested.is_set():
            self.error = f"input device {self.device.index} ({self.device.name}) stopped delivering audio"
        self.stop_requested.set()

    def blocks(self) -> Iterator[np.ndarray]:
        sd = _sounddevice()
        resampler = Resampler(self.rate)
        try:
            stream = sd.InputStream(device=self.device.index, samplerate=self.rate, channels=1, dtype="float32",
                                    blocksize=self.block_frames, callback=self._callback,
                                    finished_callback=self._finished)
        except sd.PortAudioError as error:
            raise AudioError(f"cannot open input device {self.device.index} ({self.device.name}): {error}") from None
        with stream:
            try:
                while True:
                    try:
                        block = self._queue.get(timeout=0.1)
                    except queue.Empty:
                        if self.stop_requested.is_set():
                            break
                        if not stream.active:
                            self.error = self.error or f"input device {self.device.index} ({self.device.name}) was lost"
                            break
                        continue
                    yield resampler.process(to_mono(block))
            finally:  # also when the consumer stops early (--duration): closing is not a fault
                self.stop_requested.set()
        if self.error:
            raise AudioError(self.error)
