"""ser-bench --quick runs end to end and reports every field the issue asks for."""
from __future__ import annotations

import json
from pathlib import Path

from emovox.benchmarks.cli import main as ser_bench
from tests.conftest import DATA, REPO

TOP_LEVEL = ("int8_ms_p50", "fp32_ms_p50", "seed_style_ms_p50", "replay_realtime_factor", "peak_rss_mb",
             "first_result_s")


def test_quick_bench_reports_every_field(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the fp32 file and PyTorch weights live in ./models
    out = tmp_path / "bench.json"
    assert ser_bench(["--quick", "--data", str(DATA), "--json", str(out), "--markdown", str(tmp_path / "b.md"),
                      "--plot", str(tmp_path / "hist.png"), "--work", str(tmp_path / "work")]) == 0
    report = json.loads(out.read_text())
    for key in TOP_LEVEL:
        assert isinstance(report[key], (int, float)) and report[key] > 0, key
    assert set(report["ratios"]) >= {"int8_over_fp32", "seed_style_over_int8", "noise_robust_over_int8",
                                     "phone_over_int8", "compute_share_of_real_time"}
    names = set(report["classifier"])
    for system in ("int8", "fp32", "pytorch", "seed-style"):
        for threads in {1, report["machine"]["cores"]}:
            for batch in (1, 8):
                assert f"{system} CPU {threads}t b{batch}" in names
    for other in ("noise-robust", "phone"):  # the other bundled models, on one thread
        assert {f"int8-{other} CPU 1t b1", f"int8-{other} CPU 1t b8"} <= names
    assert report["stages"]["webrtcvad_per_30ms_frame_ms"]["p50"] > 0
    assert report["stages"]["resample_48k_to_16k_per_s_ms"]["p50"] > 0
    replay = report["replay"]
    assert replay["utterances"] >= 10 and replay["audio_s"] >= 60
    assert 200 <= replay["latency_ms_p50"] < 1000 and replay["hangover_ms_p50"] >= 200
    assert len(report["targets"]) == 6
    assert (tmp_path / "hist.png").stat().st_size > 10_000
    assert "| target | met |" in (tmp_path / "b.md").read_text()
