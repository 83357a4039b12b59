"""Fixtures pointing at real corpus audio (../shared/data) and recordings built from it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import soundfile as sf

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RAVDESS = DATA / "ravdess"


def drawn_share_checked(augment: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor],
                        n_mels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a log-mel augmentation's draw, ``augment(windows, share, generator)``: at share 0 nothing
    changes, at 0.5 about half of 400 windows do, and the same seed gives the same windows.
    Returns (the windows, their share-0.5 result) for the augmentation's own checks."""
    import torch  # here, not at the top: torch is the [train] extra, and only its tests call this

    windows = torch.log(torch.rand(400, n_mels, 20, generator=torch.Generator().manual_seed(0)) + 1e-3)
    assert torch.equal(augment(windows, 0.0, torch.Generator().manual_seed(1)), windows)
    half = augment(windows, 0.5, torch.Generator().manual_seed(1))
    changed = (half != windows).flatten(1).any(1).float().mean()
    assert 0.4 < float(changed) < 0.6
    assert torch.equal(half, augment(windows, 0.5, torch.Generator().manual_seed(1)))  # seeded: same draws
    return windows, half


REQUIRE_TOOLS = os.environ.get("EMOVOX_REQUIRE_AUDIO") == "1"  # set by .ci/run: there a skip is a failure


def require_tool(tool: str) -> None:
    """Skip where a system tool is missing on a developer's machine; fail in CI, which installs it."""
    if shutil.which(tool) is None:
        if REQUIRE_TOOLS:
            pytest.fail(f"{tool} is not installed")
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")


def ravdess(name: str) -> Path:
    """A RAVDESS file by name: ``03-01-05-01-01-01-01`` -> its path under Actor_01."""
    path = RAVDESS / f"Actor_{name[-2:]}" / f"{name}.flac"
    if not path.exists():
        pytest.fail(f"corpus file missing: {path} (CI needs ../shared/data beside the checkout)")
    return path


@dataclass(frozen=True)
class Recording:
    path: Path
    spans: list[tuple[float, float]]
    """(start, end) seconds of each source file inside the recording."""
    labels: list[str]


def build_recording(path: Path, names: list[str], labels: list[str], gap_s: float = 1.5,
                    lead_s: float = 0.5) -> Recording:
    """Concatenate corpus files with silence between them (never written into the repo)."""
    parts, spans, t = [np.zeros(int(lead_s * 16000), dtype=np.float32)], [], lead_s
    for name in names:
        audio, rate = sf.read(str(ravdess(name)), dtype="float32")
        assert rate == 16000
        spans.append((t, t + len(audio) / rate))
        parts += [audio, np.zeros(int(gap_s * 16000), dtype=np.float32)]
        t += len(audio) / rate + gap_s
    sf.write(str(path), np.concatenate(parts), 16000, subtype="PCM_16")
    return Recording(path, spans, labels)


THREE = (["03-01-05-02-01-01-01", "03-01-04-02-02-01-02", "03-01-03-02-01-01-05"], ["angry", "sad", "happy"])


@pytest.fixture(scope="session")
def three_utterances(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """Angry, sad and happy RAVDESS utterances with 1.5 s of silence between them."""
    return build_recording(tmp_path_factory.mktemp("audio") / "three.wav", *THREE)


def run_ser_live(*args: str, python_prelude: str = "") -> subprocess.CompletedProcess:
    """Run ser-live as a user would, optionally after some Python set-up code."""
    code = f"{python_prelude}\nimport sys\nfrom emovox.realtime.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
