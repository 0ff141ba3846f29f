"""The configs ``python -m bench.poca`` compares: POCA's example and its independent-PPO twins."""

from __future__ import annotations

from bench.poca import as_ppo, with_strength
from bench.runs import example


def test_the_ppo_twins_change_only_the_trainer_and_the_reward_scale() -> None:
    config = example("poca/SimpleSpread.yaml")
    original = example("poca/SimpleSpread.yaml")
    twin = as_ppo(config, "SimpleSpread")
    scaled = with_strength(twin, "SimpleSpread", 1.0)

    assert twin["behaviors"]["SimpleSpread"]["trainer_type"] == "ppo"
    assert scaled["behaviors"]["SimpleSpread"]["reward_signals"]["extrinsic"]["strength"] == 1.0
    assert twin["behaviors"]["SimpleSpread"]["reward_signals"]["extrinsic"]["strength"] == 0.01
    assert config == original, "the example itself is left as it is"
    for copy in (twin, scaled):
        settings = dict(copy["behaviors"]["SimpleSpread"])
        expected = dict(original["behaviors"]["SimpleSpread"])
        for key in ("trainer_type", "reward_signals"):
            settings.pop(key)
            expected.pop(key)
        assert settings == expected, "the same hyperparameters, network and budget"
