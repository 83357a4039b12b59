"""Issue 6: odd and bad input, output faults, signals, long runs, and what is kept on disk."""
from __future__ import annotations

import csv
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from emovox.benchmarks.soak import build_speech_and_silence, growth_after, reference_utterances, replay_sampled
from tests.conftest import Recording, ravdess, read_events, run_ser_live

ANGRY = "03-01-05-02-01-01-01"  # 0.78-3.18 s, angry (0.57) when clean
NEEDS_PROC = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="memory is read from /proc")


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _finals(path: Path) -> list[dict]:
    return [e for e in read_events(path) if e["type"] == "utterance_end"]


# --- odd but valid audio: recognised like any other -----------------------------------------

def _odd_versions(clean: np.ndarray) -> dict[str, tuple[np.ndarray, int, str]]:
    narrow = soxr.resample(clean, 16000, 8000)
    wide = soxr.resample(clean, 16000, 96000)
    broken = clean.copy()
    broken[::997], broken[5::1499], broken[7::2003] = np.nan, np.inf, -np.inf
    return {
        "8kHz-8bit-stereo": (np.stack([narrow, 0.5 * narrow], axis=1), 8000, "PCM_U8"),
        "96kHz-float-6ch": (np.stack([wide * g for g in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)], axis=1)
                            .astype(np.float32), 96000, "FLOAT"),
        "nan-and-inf": (broken, 16000, "FLOAT"),
        "clipped": (np.clip(clean * 30, -1, 1), 16000, "PCM_16"),
        "dc-offset": (np.clip(clean + 0.3, -1, 1), 16000, "PCM_16"),
    }


@pytest.mark.parametrize("case", ["8kHz-8bit-stereo", "96kHz-float-6ch", "nan-and-inf", "clipped", "dc-offset"])
def test_odd_but_valid_audio_is_recognised(case: str, tmp_path: Path) -> None:
    clean, _ = sf.read(str(ravdess(ANGRY)), dtype="float32")
    audio, rate, subtype = _odd_versions(clean)[case]
    path, events = tmp_path / f"{case}.wav", tmp_path / "events.jsonl"
    sf.write(str(path), audio, rate, subtype=subtype)
    result = run_ser_live("--file", str(path), "--fast", "--no-dashboard", "--json", str(events))
    assert result.returncode == 0, result.stderr
    (final,) = _finals(events)  # one utterance, where the speech is
    assert 0.0 <= final["t_start"] <= 1.1 and 3.0 <= final["t_end"] <= 3.5, final
    assert all(np.isfinite(p) for p in final["probs"].values())
    if case != "8kHz-8bit-stereo":  # telephone band + 8-bit noise: the model is unsure (see README)
        assert final["label"] == "angry", final


# --- bad input: one line, exit 2, nothing already recognised lost ---------------------------

def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert "cannot read" in _error_line(run_ser_live("--file", str(path), "--fast"))


def test_zero_frame_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros((0, 1), np.float32), 16000)
    assert "holds no audio" in _error_line(run_ser_live("--file", str(path), "--fast"))


def test_unsupported_format(tmp_path: Path) -> None:
    """A well-formed RIFF/WAVE file whose codec (AAC, tag 0x00FF) libsndfile does not decode."""
    fmt = struct.pack("<HHIIHH", 0x00FF, 1, 16000, 2000, 1, 0)
    data = bytes(4000)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path = tmp_path / "aac.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert "cannot read" in _error_line(run_ser_live("--file", str(path), "--fast"))


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_flac_keeps_what_was_recognised(damage: str, tmp_path: Path) -> None:
    original = ravdess(ANGRY).read_bytes()
    if damage == "truncated":
        data = original[:len(original) // 2]
    else:
        rng = np.random.default_rng(1)
        middle = len(original) // 3
        data = original[:middle] + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes() + original[middle + 2000:]
    path, events = tmp_path / f"{damage}.flac", tmp_path / "events.jsonl"
    path.write_bytes(data)
    result = run_ser_live("--file", str(path), "--fast", "--no-dashboard", "--json", str(events))
    line = _error_line(result)
    assert "truncated or corrupt" in line and str(path) in line
    written = read_events(events)
    assert written[-1]["type"] == "summary"  # the run was finished, not abandoned
    if damage == "truncated":  # the first half held the start of the speech: recognised, not lost
        assert written[-1]["utterances"] == 1 and len(_finals(events)) == 1


# --- output faults ---------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--csv", "--record"])
def test_unwritable_outputs_fail_before_the_run(option: str, three_utterances: Recording, tmp_path: Path) -> None:
    target = tmp_path / "missing" / ("out.csv" if option == "--csv" else "out.wav")
    line = _error_line(run_ser_live("--file", str(three_utterances.path), "--fast", option, str(target)))
    assert "cannot write" in line


def test_record_needs_an_audio_name(three_utterances: Recording, tmp_path: Path) -> None:
    line = _error_line(run_ser_live("--file", str(three_utterances.path), "--fast",
                                    "--record", str(tmp_path / "x.mp3")))
    assert ".wav or .flac" in line


LIMIT_FILE_SIZE = ("import resource, signal\n"
                   "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG\n"
                   "resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))\n")


def test_write_error_mid_run_stops_cleanly(three_utterances: Recording, tmp_path: Path) -> None:
    """The JSONL outgrows a 3000-byte file-size limit during the run."""
    events = tmp_path / "events.jsonl"
    result = run_ser_live("--file", str(three_utterances.path), "--fast", "--no-dashboard", "--json", str(events),
                          python_prelude=LIMIT_FILE_SIZE)
    line = _error_line(result)
    assert f"writing {events} failed" in line
    text = events.read_text()
    assert text.endswith("\n") and 0 < len(text) <= 3000
    assert all(isinstance(json.loads(row), dict) for row in text.splitlines())  # only whole events
    assert "summary: " in result.stdout  # the run was finished and summarised, on stdout


def test_csv_has_one_row_per_utterance(three_utterances: Recording, tmp_path: Path) -> None:
    table, events = tmp_path / "u.csv", tmp_path / "e.jsonl"
    result = run_ser_live("--file", str(three_utterances.path), "--fast", "--no-dashboard",
                          "--csv", str(table), "--json", str(events))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(table.open()))
    finals = _finals(events)
    assert len(rows) == 3
    for row, final in zip(rows, finals):
        assert row["label"] == final["label"] and float(row["t_start"]) == final["t_start"]
        assert float(row["confidence"]) == final["confidence"]
        assert sum(float(row[f"p_{label}"]) for label in final["probs"]) == pytest.approx(1.0, abs=1e-3)


# --- privacy: audio is written only when asked --------------------------------------------------

def test_no_audio_is_kept_unless_asked(three_utterances: Recording, tmp_path: Path) -> None:
    work, home, scratch = tmp_path / "cwd", tmp_path / "home", tmp_path / "tmp"
    for folder in (work, home, scratch):
        folder.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(scratch), "XDG_CACHE_HOME": str(home / ".cache")}
    command = [sys.executable, "-m", "emovox.realtime.cli", "--file", str(three_utterances.path), "--fast",
               "--no-dashboard", "--json", "e.jsonl"]
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True, timeout=120)
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [Path("cwd/e.jsonl")]
    # asked: the recording holds what the pipeline heard and replays to the same utterances
    subprocess.run(command + ["--record", "heard.flac"], cwd=work, env=env, check=True, capture_output=True,
                   timeout=120)
    replay = subprocess.run([sys.executable, "-m", "emovox.realtime.cli", "--file", "heard.flac", "--fast",
                             "--no-dashboard", "--json", "again.jsonl"], cwd=work, env=env, capture_output=True,
                            timeout=120)
    assert replay.returncode == 0, replay.stderr
    strip = [(e["t_start"], e["t_end"], e["label"]) for e in _finals(work / "e.jsonl")]
    assert [(e["t_start"], e["t_end"], e["label"]) for e in _finals(work / "again.jsonl")] == strip


# --- signals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, delay_s", [(signal.SIGTERM, 0.0), (signal.SIGTERM, 2.0), (signal.SIGTERM, 7.5),
                                             (signal.SIGINT, 0.0), (signal.SIGINT, 4.5)])
def test_signal_leaves_complete_jsonl(signum: int, delay_s: float, three_utterances: Recording,
                                      tmp_path: Path) -> None:
    """Paced replay, signalled at start-up (as soon as the output exists), inside and between utterances."""
    events = tmp_path / "events.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "emovox.realtime.cli", "--file", str(three_utterances.path),
                                "--no-dashboard", "--json", str(events)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not events.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay_s)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == (130 if signum == signal.SIGINT else 0), stderr
    assert "Traceback" not in stderr
    written = read_events(events)  # every line parses
    assert written[-1]["type"] == "summary"
    assert written[-1]["utterances"] == len(_finals(events))
    assert written[-1]["duration_s"] <= delay_s + 3.0  # it stopped when asked (recording: 16.9 s)
    assert "summary: " in stdout


SIGNAL_WHILE_LOADING = ("import os, signal\n"
                        "import emovox.realtime.model as model\n"
                        "load = model.load_model_info\n"
                        "def loading(*args):\n"
                        "    os.kill(os.getpid(), signal.SIGTERM)\n"
                        "    return load(*args)\n"
                        "model.load_model_info = loading\n")


def test_signal_while_the_model_loads(three_utterances: Recording, tmp_path: Path) -> None:
    """No device opened, no audio read or recorded; the outputs still end with a summary."""
    events, recording = tmp_path / "events.jsonl", tmp_path / "heard.wav"
    result = run_ser_live("--file", str(three_utterances.path), "--no-dashboard", "--json", str(events),
                          "--record", str(recording), python_prelude=SIGNAL_WHILE_LOADING)
    assert result.returncode == 0, result.stderr
    assert read_events(events) == [{"type": "summary", "utterances": 0, "duration_s": 0.0, "labels": {},
                                    "dropped_frames": 0, "skipped_windows": 0}]
    assert not recording.exists()
    assert "summary: 0 utterance(s)" in result.stdout


@pytest.mark.parametrize("option", ["--json", "--csv", "--record"])
def test_an_output_never_overwrites_the_input(option: str, three_utterances: Recording, tmp_path: Path) -> None:
    before = three_utterances.path.read_bytes()
    line = _error_line(run_ser_live("--file", str(three_utterances.path), "--fast", option,
                                    str(three_utterances.path)))
    assert "is the input file" in line
    assert three_utterances.path.read_bytes() == before


# --- long runs: streamed, flat memory ----------------------------------------------------------

def _silence(path: Path, minutes: int) -> Path:
    with sf.SoundFile(str(path), "w", 16000, 1, subtype="PCM_16") as sink:
        for _ in range(minutes):
            sink.write(np.zeros(16000 * 60, np.int16))
    return path


@NEEDS_PROC
def test_thirty_minutes_of_silence(tmp_path: Path) -> None:
    """No utterance, a clear message, and memory flat from the first quarter of the run to its end."""
    path, events = _silence(tmp_path / "silence.wav", 30), tmp_path / "events.jsonl"
    status, samples = replay_sampled(path, events, interval_s=0.02)
    assert status == 0
    written = read_events(events)
    assert len(written) == 1 and written[0]["utterances"] == 0 and written[0]["duration_s"] == 1800.0
    steady = [s.rss_mb for s in samples if s.wall_s >= samples[-1].wall_s / 4]
    assert len(steady) >= 10 and max(steady) - steady[0] < 5.0, steady
    result = run_ser_live("--file", str(_silence(tmp_path / "short.wav", 1)), "--fast", "--no-dashboard")
    assert "no speech detected" in result.stdout


@NEEDS_PROC
def test_hour_long_recording_streams_in_flat_memory(tmp_path: Path) -> None:
    path, _ = build_speech_and_silence(ravdess(ANGRY).parents[1], 60.0, tmp_path / "hour.wav")
    status, samples = replay_sampled(path, tmp_path / "events.jsonl")
    assert status == 0
    assert len(_finals(tmp_path / "events.jsonl")) == reference_utterances(path)
    assert growth_after(samples)["growth_mb"] < 5.0
