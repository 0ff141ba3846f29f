"""The configs ``python -m bench.poca`` compares (POCA's example and its independent-PPO twin) and how it scores a
run."""

from __future__ import annotations

import pytest

from bench.poca import TWIN_STRENGTH, as_ppo, scored_result, with_strength
from bench.runs import Summary, example


def test_the_ppo_twin_changes_only_the_trainer_and_the_reward_scale() -> None:
    config = example("poca/SimpleSpread.yaml")
    original = example("poca/SimpleSpread.yaml")
    example_strength = original["behaviors"]["SimpleSpread"]["reward_signals"]["extrinsic"]["strength"]
    twin = as_ppo(config, "SimpleSpread")
    scaled = with_strength(twin, "SimpleSpread", TWIN_STRENGTH)

    assert twin["behaviors"]["SimpleSpread"]["trainer_type"] == "ppo"
    assert scaled["behaviors"]["SimpleSpread"]["reward_signals"]["extrinsic"]["strength"] == TWIN_STRENGTH
    assert twin["behaviors"]["SimpleSpread"]["reward_signals"]["extrinsic"]["strength"] == example_strength
    assert config == original, "the example itself is left as it is"
    for copy in (twin, scaled):
        settings = dict(copy["behaviors"]["SimpleSpread"])
        expected = dict(original["behaviors"]["SimpleSpread"])
        for key in ("trainer_type", "reward_signals"):
            settings.pop(key)
            expected.pop(key)
        assert settings == expected, "the same hyperparameters, network and budget"


def summaries(rewards: dict[int, float | None]) -> list[Summary]:
    return [Summary(step, step / 1000, -1.0, reward) for step, reward in rewards.items()]


def test_a_run_is_scored_over_its_last_share_up_to_the_budget() -> None:
    run = summaries({100: -30.0, 200: -25.0, 300: None, 400: -20.0, 500: -18.0, 600: -10.0})

    result = scored_result(2, run, 500, 0.2, "poca seed 2")

    assert (result.seed, result.step) == (2, 500)
    assert result.group_reward == pytest.approx(-19.0), "the summaries at 400 and 500, not the one after the budget"
    assert scored_result(2, run, 500, 0.0, "poca seed 2").group_reward == -18.0, "without a share: the budget's own"
    assert scored_result(2, run, 450, 0.0, "poca seed 2").group_reward == -18.0, "the first summary after the budget"


def test_a_run_that_stopped_early_is_scored_at_its_last_summary() -> None:
    run = summaries({100: -30.0, 200: -25.0})

    result = scored_result(0, run, 1000, 0.2, "poca seed 0")

    assert (result.step, result.group_reward) == (200, -25.0)


def test_a_run_without_group_rewards_is_named_in_the_error() -> None:
    with pytest.raises(RuntimeError, match="poca seed 1 printed no mean group reward"):
        scored_result(1, summaries({100: None}), 100, 0.2, "poca seed 1")
