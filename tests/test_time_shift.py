"""Time shift of the cached training windows (``--time-shift``): what it moves, what it fills, and that a
run without it draws nothing more."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.fit import TrainSettings, augmented_batch, random_time_shift, spec_augment  # noqa: E402
from emovox.train.model import FrontendSpec  # noqa: E402
from emovox.train.recipe import TEACHERS  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SPEC = FrontendSpec()
FLOOR = float(np.log(SPEC.log_floor))
FRAMES = 124


def _ramps(b: int) -> torch.Tensor:
    """Windows whose frame t holds t in every band, so that a shift reads off each window."""
    return torch.arange(FRAMES, dtype=torch.float32).expand(b, SPEC.n_mels, FRAMES).clone()


def test_each_window_moves_by_whole_frames_within_the_limit_and_leaves_silence() -> None:
    shifted = random_time_shift(_ramps(400), 0.5, torch.Generator().manual_seed(0), SPEC)
    limit = round(0.5 * SPEC.sample_rate / SPEC.hop_length)  # 25 frames of 20 ms
    shifts = []
    for window in shifted:
        assert torch.equal(window, window[:1].expand_as(window))  # every band alike
        row = window[0]
        kept = row != FLOOR
        shift = int(torch.arange(FRAMES)[kept][0] - row[kept][0])
        expected = torch.arange(FRAMES, dtype=torch.float32) - shift
        assert torch.equal(row[kept], expected[kept])  # moved, not stretched
        assert int((~kept).sum()) == abs(shift)  # the frames it left, and no others, are silent
        shifts.append(shift)
    assert min(shifts) == -limit and max(shifts) == limit and 0 in shifts


def test_off_it_draws_nothing_so_every_earlier_recipe_trains_as_before() -> None:
    windows = torch.randn(8, SPEC.n_mels, FRAMES) - 5
    plain = augmented_batch(windows, TrainSettings(), torch.Generator().manual_seed(3), None, SPEC)
    masked = spec_augment(windows.float(), TrainSettings(), torch.Generator().manual_seed(3), SPEC.log_floor)
    assert torch.equal(plain, masked)
    shifted = augmented_batch(windows, TrainSettings(time_shift_s=0.5), torch.Generator().manual_seed(3), None, SPEC)
    assert not torch.equal(shifted, plain)


def test_the_preset_is_the_default_recipe_shifted_half_a_second() -> None:
    assert TEACHERS["time-shift"] == replace(TEACHERS["default"], time_shift_s=0.5)


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan"])
def test_a_shift_outside_half_a_window_is_a_usage_error(capsys, value: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), "--time-shift", value]) == 2
    assert "--time-shift takes 0-1.25 seconds" in capsys.readouterr().err
