"""End to end: ser-live replaying a long recording built from corpus files, as a separate process."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def build_recording(ravdess_dir: Path, minutes: float, out: Path) -> tuple[Path, int]:
    """RAVDESS files back to back (each keeps its ~1 s of leading/trailing quiet) until ``minutes``.

    Written once under the git-ignored cache; returns (path, number of files).
    """
    files = sorted(Path(ravdess_dir).rglob("*.flac"))
    if not files:
        raise FileNotFoundError(f"no RAVDESS files under {ravdess_dir}")
    target = int(minutes * 60 * SAMPLE_RATE)
    if out.exists() and sf.info(str(out)).frames >= target:
        return out, int(out.with_suffix(".count").read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    written, count = 0, 0
    with sf.SoundFile(str(out), "w", SAMPLE_RATE, 1, subtype="PCM_16") as sink:
        while written < target:
            audio, rate = sf.read(str(files[count % len(files)]), dtype="float32")
            assert rate == SAMPLE_RATE
            sink.write(audio)
            written += len(audio)
            count += 1
    out.with_suffix(".count").write_text(str(count))
    return out, count


def _ser_live(*args: str) -> list[str]:
    return [sys.executable, "-m", "emovox.realtime.cli", *args]


# ser-live's own main(), then its peak RSS as the kernel reports it for its address space
# (VmHWM). ru_maxrss from wait4 would not do: it also counts the forked copy of this large
# benchmark process from before the exec.
_MEASURED = """
import sys
from emovox.realtime.cli import main
status = main(sys.argv[2:])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
open(sys.argv[1], "w").write(hwm.split()[1])
sys.exit(status)
"""


def peak_rss_run(rss_file: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _MEASURED, str(rss_file), *args], stdout=subprocess.DEVNULL)


def replay(recording: Path, work: Path) -> dict:
    """Real-time factor, peak RSS and the speech-end -> label latency split, from one --fast run."""
    events_file = work / "replay.jsonl"
    began = time.perf_counter()
    rss_file = work / "replay.rss_kb"
    process = peak_rss_run(rss_file, "--file", str(recording), "--fast", "--no-dashboard", "--json", str(events_file))
    status = process.wait()
    wall = time.perf_counter() - began
    if status != 0:
        raise RuntimeError(f"ser-live exited with status {status}")
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    duration = sf.info(str(recording)).duration
    finals = {(e["utterance"], e["t_end"]): e["compute_ms"] for e in events if e["type"] == "window"}
    ends = [e for e in events if e["type"] == "utterance_end"]
    compute = np.array([finals.get((e["utterance"], e["t_end"]), 0.0) for e in ends])
    latency = np.array([e["latency_ms"] for e in ends])
    return {
        "audio_s": round(duration, 1), "wall_s": round(wall, 2),
        "realtime_factor": round(duration / wall, 1),
        "compute_share_of_real_time": round(wall / duration, 5),
        "peak_rss_mb": round(int(rss_file.read_text()) / 1024, 1),
        "utterances": len(ends),
        "latency_ms_p50": round(float(np.median(latency)), 1),
        "hangover_ms_p50": round(float(np.median(latency - compute)), 1),
        "final_compute_ms_p50": round(float(np.median(compute)), 3),
    }


def first_result(recording: Path, work: Path, repeats: int = 3) -> float:
    """Seconds from process start to the first result written (median of ``repeats``).

    The recording is replayed with --fast, so this is start-up plus the compute
    for the first utterance, not the wait for the speaker.
    """
    times = []
    for i in range(repeats):
        events_file = work / f"first{i}.jsonl"
        events_file.unlink(missing_ok=True)
        began = time.perf_counter()
        process = subprocess.Popen(_ser_live("--file", str(recording), "--fast", "--no-dashboard",
                                             "--json", str(events_file)), stdout=subprocess.DEVNULL)
        seen = None
        while seen is None and time.perf_counter() - began < 60:
            if events_file.exists() and any('"type": "window"' in line or '"type": "utterance_end"' in line
                                            for line in events_file.read_text().splitlines()):
                seen = time.perf_counter() - began
            else:
                time.sleep(0.002)
        process.wait()
        if seen is None:
            raise RuntimeError("ser-live wrote no result within 60 s")
        times.append(seen)
    return round(float(np.median(times)), 3)
