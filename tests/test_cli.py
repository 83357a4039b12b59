"""ser-live as a user runs it: output files, messages, exit codes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emovox.realtime.model import default_model_path, metadata_path
from tests.conftest import Recording, read_events, run_ser_live

BLOCK_TORCH = ("import sys\n"
               "for name in ('torch', 'librosa', 'torchaudio', 'numba'):\n"
               "    sys.modules[name] = None  # any import of them now raises ImportError\n")


def test_replay_writes_the_event_contract(three_utterances: Recording, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = run_ser_live("--file", str(three_utterances.path), "--fast", "--no-dashboard", "--json", str(out))
    assert result.returncode == 0, result.stderr
    events = read_events(out)
    assert [e["type"] for e in events if e["type"] != "window"] == \
        ["utterance_start", "utterance_end"] * 3 + ["summary"]
    ends = [e for e in events if e["type"] == "utterance_end"]
    for end, (t0, t1) in zip(ends, three_utterances.spans):
        assert t0 - 0.5 <= end["t_start"] < end["t_end"] <= t1 + 0.5
        assert set(end) == {"type", "utterance", "t_start", "t_end", "label", "confidence", "probs", "latency_ms"}
    window = next(e for e in events if e["type"] == "window")
    assert set(window) == {"type", "utterance", "t_start", "t_end", "label", "confidence", "probs", "compute_ms"}
    assert events[-1] == {"type": "summary", "utterances": 3, "duration_s": events[-1]["duration_s"],
                          "labels": events[-1]["labels"], "dropped_frames": 0, "skipped_windows": 0}
    assert sum(events[-1]["labels"].values()) == 3
    # stdout: one readable line per utterance, then the summary
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("summary: 3 utterance(s), ")
    for line, end in zip(lines, ends):
        assert end["label"] in line and f"{end['t_start']:.2f}" in line


def test_runs_without_torch_or_librosa(three_utterances: Recording, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = run_ser_live("--file", str(three_utterances.path), "--fast", "--no-dashboard", "--json", str(out),
                          python_prelude=BLOCK_TORCH)
    assert result.returncode == 0, result.stderr
    assert sum(e["type"] == "utterance_end" for e in read_events(out)) == 3


def test_real_time_pacing_takes_the_recording_length(tmp_path: Path) -> None:
    import time

    import numpy as np
    import soundfile as sf

    path = tmp_path / "quiet.wav"
    sf.write(str(path), np.zeros(16000 * 2, dtype=np.float32), 16000)
    began = time.monotonic()
    result = run_ser_live("--file", str(path), "--no-dashboard")
    assert result.returncode == 0
    assert time.monotonic() - began >= 2.0
    assert "summary: 0 utterance(s), 0.0 s of speech in 2.0 s" in result.stdout


def _error_line(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_missing_file(tmp_path: Path) -> None:
    line = _error_line(run_ser_live("--file", str(tmp_path / "nope.wav"), "--fast"))
    assert "no such file" in line


def test_directory(tmp_path: Path) -> None:
    assert "directory" in _error_line(run_ser_live("--file", str(tmp_path), "--fast"))


def test_text_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio at all\n")
    assert "cannot read" in _error_line(run_ser_live("--file", str(path), "--fast"))


def test_unwritable_json_fails_before_reading_audio(three_utterances: Recording, tmp_path: Path) -> None:
    line = _error_line(run_ser_live("--file", str(three_utterances.path), "--fast",
                                    "--json", str(tmp_path / "missing" / "dir" / "e.jsonl")))
    assert "cannot write" in line


@pytest.mark.parametrize("args, message", [
    (["--fast"], "--fast only applies to --file"),
    (["--file", "x.wav", "--device", "1"], "either --file or --device"),
    (["--duration", "0"], "--duration must be positive"),
    (["--hop", "-1"], "--hop must be positive"),
])
def test_bad_option_combinations(args: list[str], message: str) -> None:
    assert message in _error_line(run_ser_live(*args))


def _copy_model(tmp_path: Path) -> tuple[Path, dict]:
    model = tmp_path / "m.int8.onnx"
    shutil.copy(default_model_path(), model)
    meta = json.loads(metadata_path(default_model_path()).read_text())
    return model, meta


@pytest.mark.parametrize("fault", ["missing", "corrupt", "labels", "window", "rate", "no-metadata"])
def test_model_faults(fault: str, tmp_path: Path) -> None:
    model, meta = _copy_model(tmp_path)
    if fault == "missing":
        model.unlink()
    elif fault == "corrupt":
        model.write_bytes(b"\x08\x01garbage" * 100)
    elif fault == "labels":
        meta["labels"] = meta["labels"][:-1]
    elif fault == "window":
        meta["window_samples"] = 32000
    elif fault == "rate":
        meta["sample_rate"] = 8000
    if fault != "no-metadata":
        metadata_path(model).write_text(json.dumps(meta))
    # the audio path does not exist: the model fault must be reported before any audio is opened
    line = _error_line(run_ser_live("--file", "/nonexistent.wav", "--fast", "--model", str(model)))
    assert str(model) in line or "model" in line
    assert "nonexistent" not in line
