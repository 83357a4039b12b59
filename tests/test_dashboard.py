"""The dashboard as a person sees it: rendered text, and the real program in a real terminal (tmux)."""
from __future__ import annotations

import subprocess
import sys
import time

from rich.console import Console

from emovox.realtime.dashboard import DashboardState, SessionTally, render, percentile
from emovox.realtime.events import Summary, UtteranceEnd, UtteranceStart, WindowResult
from emovox.realtime.runner import LiveStatus
from tests.conftest import Recording, require_tool

LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def probs(top: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(LABELS) - 1)
    return {label: (p if label == top else rest) for label in LABELS}


def screen(state: DashboardState, status: LiveStatus) -> str:
    console = Console(record=True, width=110, file=open("/dev/null", "w"), color_system="truecolor")
    console.print(render(state, status, "talk.wav"))
    return console.export_text()


def test_screen_shows_label_bars_timeline_and_changes_with_a_new_utterance() -> None:
    state = DashboardState(LABELS, "emotion_cnn_lstm.int8.onnx", "CPUExecutionProvider")
    status = LiveStatus(level_db=-23.0, in_speech=True, position_s=12.0)
    before = screen(state, status)
    assert "waiting for speech" in before and "utterances 0" in before
    assert "compute p50 -  p95 -" in before and "nan" not in before  # nothing measured yet

    state.update(UtteranceStart(0, 1.0))
    state.update(WindowResult(0, 0.8, 3.3, "angry", 0.81, probs("angry", 0.81), 0.9))
    state.update(UtteranceEnd(0, 1.0, 3.5, "angry", 0.77, probs("angry", 0.77), 300.0))
    first = screen(state, status)
    assert "ANGRY" in first and "77%" in first and "(final)" in first
    angry_row = next(line for line in first.splitlines() if "angry" in line and "█" in line)
    assert angry_row.count("█") >= 20  # 77 % of a 30-cell bar
    assert "● speech" in first and "-23.0 dBFS" in first
    assert "compute p50 0.9 ms" in first and "speech end→label p50 300 ms" in first and "utterances 1" in first
    strip = next(line for line in first.splitlines() if "·" in line and "█" in line)
    assert strip.count("█") == 4  # the seconds touched by 0.8..3.5 s, of the last 60 s

    state.update(UtteranceStart(1, 6.0))
    state.update(UtteranceEnd(1, 6.0, 8.0, "sad", 0.64, probs("sad", 0.64), 290.0))
    second = screen(state, status)
    assert "SAD" in second and "ANGRY" not in second and "utterances 2" in second
    overrun = screen(state, LiveStatus(position_s=12.0, dropped_frames=960, input_overflows=2))
    assert "dropped frames 960" in overrun and "input overflows 2" in overrun
    strip = next(line for line in second.splitlines() if "·" in line and "█" in line)
    assert strip.count("█") == 6


def test_session_tally_shares_by_speaking_time() -> None:
    tally = SessionTally()
    tally.add(UtteranceEnd(0, 0.0, 3.0, "angry", 0.8, {}, 300.0))
    tally.add(UtteranceEnd(1, 5.0, 6.0, "sad", 0.7, {}, 300.0))
    text = tally.describe(Summary(2, 10.0, {"angry": 1, "sad": 1}, 0))
    assert text == "summary: 2 utterance(s), 4.0 s of speech in 10.0 s: angry 75%, sad 25%"


def test_percentile() -> None:
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile([5, 1, 3, 2, 4], 95) == 5


def _capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def test_dashboard_in_a_real_terminal(three_utterances: Recording) -> None:
    require_tool("tmux")
    session = f"emovox{time.monotonic_ns()}"
    command = f"{sys.executable} -m emovox.realtime.cli --file {three_utterances.path}; sleep 60"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "45", command], check=True)
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = _capture(session)
            seen.append(text)
            if "summary:" in text:
                break
            time.sleep(0.5)
        final = seen[-1]
        assert "summary: 3 utterance(s)" in final
        # while it ran: the first utterance's label on screen, then the count going up
        first = next(t for t in seen if "utterances 1" in t)
        assert "(final)" in first and "last 60 s" in first and "█" in first
        assert "utterances 3" in final
        assert any(label in first for label in LABELS)
        assert "emotion_cnn_lstm.int8.onnx (CPUExecutionProvider)" in final
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
