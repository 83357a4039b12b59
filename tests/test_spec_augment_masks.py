"""SpecAugment's strength (``--freq-masks``, ``--time-masks``): more masks blank more of a window, the
``masks-4`` preset is the default recipe with 4 and 4, and a count outside 0-8 is a usage error."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from emovox.train.cli import main as ser_train  # noqa: E402
from emovox.train.fit import TrainSettings, spec_augment  # noqa: E402
from emovox.train.model import FrontendSpec  # noqa: E402
from emovox.train.recipe import TEACHERS, ensemble_member  # noqa: E402
from tests.conftest import DATA  # noqa: E402

SPEC = FrontendSpec()
FLOOR = float(np.log(SPEC.log_floor))


def _masked_share(freq_masks: int, time_masks: int) -> tuple[float, float]:
    """(share of mel bins masked across every frame, share of frames masked across every bin) over 500 windows."""
    windows = torch.zeros(500, SPEC.n_mels, 125)
    settings = TrainSettings(freq_masks=freq_masks, time_masks=time_masks)
    masked = spec_augment(windows, settings, torch.Generator().manual_seed(0), SPEC.log_floor) == FLOOR
    whole_bins = masked.all(dim=2).float().mean().item()
    whole_frames = masked.all(dim=1).float().mean().item()
    return whole_bins, whole_frames


def test_four_masks_of_each_kind_blank_about_twice_what_two_do() -> None:
    bins_2, frames_2 = _masked_share(2, 2)
    bins_4, frames_4 = _masked_share(4, 4)
    assert 0.10 < bins_2 < 0.14 and 0.06 < frames_2 < 0.09  # 2 x mean width 4 of 64 bins, 2 x 5 of 125 frames
    assert 1.7 < bins_4 / bins_2 < 2.1 and 1.7 < frames_4 / frames_2 < 2.1  # overlaps keep it under 2
    assert _masked_share(0, 0) == (0.0, 0.0)


def test_the_preset_is_the_default_recipe_with_four_masks_of_each_kind() -> None:
    assert TEACHERS["masks-4"] == replace(TEACHERS["default"], freq_masks=4, time_masks=4)
    assert ensemble_member("masks-4", seed=3).train.freq_masks == 4


@pytest.mark.parametrize("flag, value", [("--freq-masks", "-1"), ("--time-masks", "9")])
def test_a_mask_count_outside_0_to_8_is_a_usage_error(capsys, flag: str, value: str) -> None:
    assert ser_train(["cv", "--data", str(DATA), flag, value]) == 2
    assert f"{flag} takes 0-8, got {value}" in capsys.readouterr().err
