"""The live terminal view (rich), and the session tally shared with the plain-line output."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from emovox.realtime.aggregate import UNCERTAIN
from emovox.realtime.events import Event, Summary, UtteranceEnd, UtteranceStart, WindowResult
from emovox.realtime.runner import LiveStatus

COLOURS = {"neutral": "grey62", "calm": "cyan", "happy": "yellow", "sad": "blue", "angry": "red",
           "fearful": "magenta", "disgust": "green", "surprised": "dark_orange", UNCERTAIN: "grey35"}
TIMELINE_S = 60


def colour(label: str) -> str:
    return COLOURS.get(label, "white")


def percentile(values: list[float] | deque, q: float) -> float:
    """Nearest-rank percentile; NaN when empty."""
    if not values:
        return math.nan
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, math.ceil(q / 100 * len(ranked)) - 1))]


def _ms(value: float, decimals: int) -> str:
    """``1.2 ms``, or a dash before there is anything to measure (never ``nan``)."""
    return "-" if math.isnan(value) else f"{value:.{decimals}f} ms"


@dataclass
class SessionTally:
    """Utterances, speaking time and each emotion's share: the Ctrl-C / end-of-run summary."""

    utterances: int = 0
    speaking_s: float = 0.0
    seconds_by_label: dict[str, float] = field(default_factory=dict)

    def add(self, event: UtteranceEnd) -> None:
        duration = max(0.0, event.t_end - event.t_start)
        self.utterances += 1
        self.speaking_s += duration
        self.seconds_by_label[event.label] = self.seconds_by_label.get(event.label, 0.0) + duration

    def describe(self, summary: Summary) -> str:
        text = (f"summary: {self.utterances} utterance(s), {self.speaking_s:.1f} s of speech "
                f"in {summary.duration_s:.1f} s")
        if self.speaking_s > 0:
            shares = sorted(self.seconds_by_label.items(), key=lambda item: -item[1])
            text += ": " + ", ".join(f"{label} {seconds / self.speaking_s:.0%}" for label, seconds in shares)
        else:
            text += ": no speech detected (silent or very quiet input? --vad-mode 0 is the most sensitive)"
        if summary.dropped_frames:
            text += f"; {summary.dropped_frames} frame(s) dropped"
        if summary.skipped_windows:
            text += f"; {summary.skipped_windows} interim window(s) skipped (classification behind real time)"
        return text


@dataclass
class DashboardState:
    """Everything the view shows, folded from events (pure: tested without a terminal)."""

    labels: tuple[str, ...]
    model_name: str
    provider: str
    current_label: str = "-"
    current_confidence: float = 0.0
    current_final: bool = False
    probs: dict[str, float] = field(default_factory=dict)
    timeline: deque = field(default_factory=lambda: deque(maxlen=512))
    """(t_start, t_end, label, final) of recent results."""
    compute_ms: deque = field(default_factory=lambda: deque(maxlen=500))
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=500))
    utterance: int | None = None
    tally: SessionTally = field(default_factory=SessionTally)

    def update(self, event: Event) -> None:
        if isinstance(event, UtteranceStart):
            self.utterance = event.utterance
        elif isinstance(event, WindowResult):
            self.compute_ms.append(event.compute_ms)
            self._show(event.label, event.confidence, event.probs, final=False)
            self.timeline.append((event.t_start, event.t_end, event.label, False))
        elif isinstance(event, UtteranceEnd):
            self.latency_ms.append(event.latency_ms)
            self._show(event.label, event.confidence, event.probs, final=True)
            self.timeline.append((event.t_start, event.t_end, event.label, True))
            self.tally.add(event)

    def _show(self, label: str, confidence: float, probs: dict[str, float], final: bool) -> None:
        self.current_label, self.current_confidence, self.current_final = label, confidence, final
        self.probs = dict(probs)

    def timeline_cells(self, now: float, seconds: int = TIMELINE_S) -> list[str | None]:
        """One label (or None) per second of the last ``seconds``; final results win over interim ones."""
        cells: list[str | None] = [None] * seconds
        start = now - seconds
        for final_pass in (False, True):
            for t0, t1, label, final in self.timeline:
                if final != final_pass or t1 <= start:
                    continue
                for i in range(max(0, int(t0 - start)), min(seconds, math.ceil(t1 - start))):
                    cells[i] = label
        return cells


def _bar(fraction: float, width: int, style: str) -> Text:
    filled = max(0, min(width, round(fraction * width)))
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="grey23")


def render(state: DashboardState, status: LiveStatus, source_name: str) -> RenderableType:
    """The whole screen as one rich renderable."""
    label = state.current_label
    headline = Text(f"  {label.upper()}  ", style=f"bold reverse {colour(label)}")
    headline.append(f"  {state.current_confidence:4.0%}" if label != "-" else "  waiting for speech")
    headline.append("  (final)" if state.current_final else ("  (interim)" if label != "-" else ""), style="dim")
    vad = Text("● speech", style="bold green") if status.in_speech else Text("○ silence", style="grey50")
    level_fraction = min(1.0, max(0.0, (status.level_db + 70) / 70))
    level = Text("level ") + _bar(level_fraction, 24, "green" if level_fraction < 0.9 else "red") + \
        Text(f" {status.level_db:6.1f} dBFS   ") + vad

    bars = Table.grid(padding=(0, 1))
    for name in state.labels:
        p = state.probs.get(name, 0.0)
        bars.add_row(Text(f"{name:<10s}", style=colour(name)), _bar(p, 30, colour(name)), Text(f"{p:4.0%}"))

    cells = state.timeline_cells(status.position_s)
    strip = Text()
    for cell in cells:
        strip.append("█" if cell else "·", style=colour(cell) if cell else "grey23")
    marks = Text("-60s" + " " * 11 + "-45s" + " " * 11 + "-30s" + " " * 11 + "-15s" + " " * 9 + "now", style="dim")
    legend = Text()
    for name in state.labels:
        legend.append("■ ", style=colour(name)).append(f"{name}  ")

    p50, p95 = _ms(percentile(state.compute_ms, 50), 1), _ms(percentile(state.compute_ms, 95), 1)
    lat50 = _ms(percentile(state.latency_ms, 50), 0)
    overflows = f"   input overflows {status.input_overflows}" if status.input_overflows else ""
    overflows += f"   skipped windows {status.skipped_windows}" if status.skipped_windows else ""
    stats = Text(f"compute p50 {p50}  p95 {p95}   speech end→label p50 {lat50}\n"
                 f"utterances {state.tally.utterances}   dropped frames {status.dropped_frames}{overflows}   "
                 f"t = {status.position_s:.1f} s\n"
                 f"model {state.model_name} ({state.provider})   source {source_name}", style="grey70")
    return Panel(Group(headline, level, Text(""), bars, Text(""), Text("last 60 s", style="bold"), strip, marks,
                       legend, Text(""), stats), title="emovox · speech emotion", border_style="grey50")
