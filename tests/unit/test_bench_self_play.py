"""The self-play bench's reading of an ELO curve."""

from __future__ import annotations

import pytest

from bench.self_play import EloCurve


def test_an_elo_curve_reads_its_slope_per_million_steps_and_the_share_of_rising_periods() -> None:
    curve = EloCurve((100_000, 200_000, 300_000, 400_000), (1200.0, 1230.0, 1220.0, 1260.0))
    assert curve.slope_per_million == pytest.approx(170.0)
    assert curve.rising_share == pytest.approx(2 / 3)
    assert EloCurve((1,), (1200.0,)).slope_per_million == 0.0 and EloCurve((1,), (1200.0,)).rising_share == 0.0
    falling = EloCurve((1, 2, 3), (1300.0, 1250.0, 1200.0))
    assert falling.slope_per_million < 0 and falling.rising_share == 0.0
