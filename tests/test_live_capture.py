"""The live path through a real audio stack: PortAudio -> ALSA -> PulseAudio.

A PulseAudio null sink's monitor, remapped as a source and made the default,
acts as the microphone; paplay "speaks" RAVDESS files into the sink.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.realtime.settings import VadSettings
from emovox.realtime.vad import SpeechStart, segment_clip
from tests.conftest import THREE, ravdess, read_events, require_tool, run_ser_live

def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()


@pytest.fixture(scope="module")
def virtual_mic():
    """A PulseAudio server with a null sink whose monitor is the default source."""
    require_tool("pulseaudio")
    require_tool("paplay")
    started = subprocess.run(["pulseaudio", "--check"]).returncode != 0
    if started:
        subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1"], check=True, timeout=30,
                       capture_output=True)
        for _ in range(50):
            if subprocess.run(["pulseaudio", "--check"]).returncode == 0:
                break
            time.sleep(0.1)
    # A suspended sink's monitor delivers no samples, so stream time would stop during silences.
    subprocess.run(["pactl", "unload-module", "module-suspend-on-idle"], capture_output=True)
    modules = [_pactl("load-module", "module-null-sink", "sink_name=emovox_test_sink", "rate=48000"),
               _pactl("load-module", "module-remap-source", "master=emovox_test_sink.monitor",
                      "source_name=emovox_test_mic")]
    _pactl("set-default-source", "emovox_test_mic")
    yield "emovox_test_sink"
    for module in reversed(modules):
        subprocess.run(["pactl", "unload-module", module], capture_output=True)
    if started:
        subprocess.run(["pulseaudio", "--kill"], capture_output=True)


def _recording_streams() -> int:
    return len([line for line in _pactl("list", "short", "source-outputs").splitlines() if line.strip()])


def _onset_in_file(path: Path) -> float:
    """Where the offline segmenter finds speech in the file: the reference for live onsets."""
    audio, rate = sf.read(str(path), dtype="float32")
    onsets = [e.onset for e in segment_clip(audio, VadSettings()) if isinstance(e, SpeechStart)]
    assert onsets, f"no speech in {path}"
    return onsets[0] / rate


def test_real_capture_through_pulseaudio(virtual_mic: str, tmp_path: Path) -> None:
    out = tmp_path / "live.jsonl"
    files = [ravdess(name) for name in THREE[0]]
    # One recording, played by one paplay: a second of silence, then each file and 1.5 s of
    # silence. Where each utterance starts is then known in stream time, free of the jitter of
    # starting a player process per file.
    clips = [sf.read(str(f), dtype="float32") for f in files]
    rate = clips[0][1]
    durations = [len(audio) / rate for audio, _ in clips]
    gap = np.zeros(round(1.5 * rate), dtype=np.float32)
    pieces, starts, position = [np.zeros(rate, dtype=np.float32)], [], rate
    for audio, _ in clips:
        starts.append(position / rate)
        pieces += [audio, gap]
        position += len(audio) + len(gap)
    program = tmp_path / "three_utterances.wav"
    sf.write(str(program), np.concatenate(pieces), rate)
    total = 2.0 + position / rate + 2.0
    live = subprocess.Popen([sys.executable, "-m", "emovox.realtime.cli", "--device", "pulse", "--duration",
                             f"{total:.1f}", "--no-dashboard", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while _recording_streams() == 0:  # wait until ser-live's capture stream is open
            assert live.poll() is None, live.communicate()
            assert time.monotonic() < deadline, "ser-live never opened the input"
            time.sleep(0.05)
        subprocess.run(["paplay", f"--device={virtual_mic}", str(program)], check=True, timeout=60)
        stdout, stderr = live.communicate(timeout=total + 30)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 0, stderr
    events = read_events(out)
    ends = [e for e in events if e["type"] == "utterance_end"]
    assert len(ends) == 3, events
    expected = [start + _onset_in_file(path) for start, path in zip(starts, files)]
    # Stream time counts delivered samples; an idle null sink's monitor delivers none until
    # the first sound, so stream time and the recording's time differ by a constant offset.
    offset = ends[0]["t_start"] - expected[0]
    assert abs(offset) < 3.0
    for end, onset, duration, start in zip(ends, expected, durations, starts):
        assert end["t_start"] - offset == pytest.approx(onset, abs=0.3)  # order and gaps as played
        assert start + offset - 0.3 <= end["t_start"] < end["t_end"] <= start + offset + duration + 0.3
    assert events[-1]["type"] == "summary" and events[-1]["utterances"] == 3
    assert events[-1]["dropped_frames"] == 0
    latencies = [e["latency_ms"] for e in ends]
    assert all(250 <= latency < 1500 for latency in latencies)
    assert "summary: 3 utterance(s)" in stdout


def test_unknown_device_index_names_the_devices(virtual_mic: str) -> None:
    result = run_ser_live("--device", "99", "--duration", "1", "--no-dashboard")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert "no input device with index 99" in line and "pulse" in line


def test_unknown_device_name(virtual_mic: str) -> None:
    result = run_ser_live("--device", "no-such-microphone", "--duration", "1", "--no-dashboard")
    assert result.returncode == 2
    line, = result.stderr.strip().splitlines()
    assert "no input device matches 'no-such-microphone'" in line


def test_list_devices_marks_the_default(virtual_mic: str) -> None:
    result = run_ser_live("--list-devices")
    assert result.returncode == 0
    assert any(line.startswith("*") for line in result.stdout.splitlines())
    assert "pulse" in result.stdout and "Hz" in result.stdout


def test_missing_portaudio_says_how_to_install() -> None:
    prelude = "import ctypes.util\nctypes.util.find_library = lambda name: None\n"
    result = run_ser_live("--duration", "1", "--no-dashboard", python_prelude=prelude)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert "PortAudio library not found" in line and "apt install libportaudio2" in line
    assert "brew install portaudio" in line and "dnf install portaudio" in line


def test_no_input_device_at_all() -> None:
    prelude = ("import sounddevice as sd\n"
               "sd.query_devices = lambda *a, **k: sd.DeviceList([])\n")
    result = run_ser_live("--duration", "1", "--no-dashboard", python_prelude=prelude)
    assert result.returncode == 2
    line, = result.stderr.strip().splitlines()
    assert "no audio input device found" in line


def test_device_without_a_usable_rate() -> None:
    prelude = ("import sounddevice as sd\n"
               "def refuse(*a, **k):\n    raise sd.PortAudioError('Invalid sample rate')\n"
               "sd.check_input_settings = refuse\n"
               "sd.query_devices = lambda *a, **k: sd.DeviceList([{'name': 'fake mic', 'max_input_channels': 1,"
               " 'default_samplerate': 44100.0, 'index': 0, 'hostapi': 0, 'max_output_channels': 0}])\n"
               "sd.default.device = (0, 0)\n")
    result = run_ser_live("--duration", "1", "--no-dashboard", python_prelude=prelude)
    assert result.returncode == 2, result.stderr
    line, = result.stderr.strip().splitlines()
    assert "cannot open at any usable sample rate" in line


def test_device_lost_mid_stream_keeps_what_was_recognised(virtual_mic: str, tmp_path: Path) -> None:
    """The source disappears while ser-live listens: a clean stop, one line, the JSONL intact."""
    out = tmp_path / "lost.jsonl"
    live = subprocess.Popen([sys.executable, "-m", "emovox.realtime.cli", "--device", "pulse",
                             "--duration", "30", "--no-dashboard", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while _recording_streams() == 0:
            assert live.poll() is None, live.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        subprocess.run(["paplay", f"--device={virtual_mic}", str(ravdess(THREE[0][0]))], check=True, timeout=30)
        time.sleep(1.0)
        subprocess.run(["pulseaudio", "--kill"], capture_output=True)
        stdout, stderr = live.communicate(timeout=30)
    finally:
        if live.poll() is None:
            live.kill()
        subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1"], capture_output=True)
    events = read_events(out)
    assert events[-1]["type"] == "summary"
    assert sum(e["type"] == "utterance_end" for e in events) == 1
    assert live.returncode == 2, (stdout, stderr)
    assert "Traceback" not in stderr
    # PortAudio's ALSA layer prints its own diagnostics to stderr first; ours is the one final line.
    assert re.fullmatch(r"ser-live: error: input device \d+ \(pulse\) stopped delivering audio",
                        stderr.strip().splitlines()[-1])
