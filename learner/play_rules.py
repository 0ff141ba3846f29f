"""Each algorithm's play rules, without torch: what it asks of the data the EnvActors send it.

The driver reads them when it starts the EnvActors (:func:`rayagents.learner.registry.play_rules`), so they live
apart from the algorithms' modules, which load torch. Why each algorithm chose its rules is told in its own module:
PPO's lag bound in :mod:`ppo`, SAC's in :mod:`sac`, POCA's in :mod:`poca`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rayagents.configs.trainer import TrainerSettings

PPO_MAX_POLICY_LAG = 8
"""The most updates behind the trainer the acting weights of an experience may be, with ``threaded: false``.

A trajectory's first experience arrives about ``time_horizon`` × agents ÷ ``buffer_size`` updates old: two to four
for the CartPole example at 8 EnvActors × 8 areas, where a bound of 4 dropped 3.4–4.9% of the steps and 8 drops
none and solves as fast (README, "Policy lag and ``threaded``"). PPO's loss weights an older experience by its
truncated importance ratio, so what the bound lets in is trained on as PPO means it."""
PPO_MAX_POLICY_LAG_THREADED = 16
"""The same with ``threaded: true`` (ML-Agents: the players step on while the model updates)."""


@dataclass(frozen=True)
class PlayRules:
    """What an algorithm asks of the data it trains on."""

    max_policy_lag: int | None
    """The most weights versions an experience's acting weights may be behind the trainer's when it is trained on
    (0: only the current version); None: any age (an off-policy algorithm with a replay buffer)."""
    whole_sequences: bool = False
    """The algorithm trains on whole sequences of steps (a recurrent network): trajectories are kept whole."""
    groupmates: bool = False
    """The algorithm trains on what each agent's groupmates did (a centralized critic, POCA): the EnvActors record
    it in :attr:`Trajectory.groupmates`."""

    def trainable(self, lags: np.ndarray) -> np.ndarray:
        """bool, per experience: whether an experience with this lag (trainer version − acting version) may be
        trained on. A negative lag (weights this trainer never made, e.g. from before a restart) never may."""
        if self.max_policy_lag is None:
            return lags >= 0
        return (lags >= 0) & (lags <= self.max_policy_lag)


def ppo_play_rules(settings: TrainerSettings) -> PlayRules:
    """PPO's policy lag bound (see :mod:`ppo`); with memory it trains on whole sequences."""
    return PlayRules(
        max_policy_lag=PPO_MAX_POLICY_LAG_THREADED if settings.threaded else PPO_MAX_POLICY_LAG,
        whole_sequences=settings.network_settings.memory is not None,
    )


def sac_play_rules(settings: TrainerSettings) -> PlayRules:
    """SAC trains on experiences of any policy lag (it learns off policy from its replay buffer); with memory, on
    whole sequences."""
    return PlayRules(max_policy_lag=None, whole_sequences=settings.network_settings.memory is not None)


def poca_play_rules(settings: TrainerSettings) -> PlayRules:
    """PPO's policy lag bound; the EnvActors record each agent's groupmates; with memory, whole sequences."""
    return PlayRules(
        max_policy_lag=PPO_MAX_POLICY_LAG_THREADED if settings.threaded else PPO_MAX_POLICY_LAG,
        whole_sequences=settings.network_settings.memory is not None,
        groupmates=True,
    )
