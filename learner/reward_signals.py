"""The reward signals a trainer combines: each signal's rewards, scaled by its ``strength``, with its own ``gamma``.

Only the extrinsic signal (the player's own reward) is trained for now; the others (curiosity, GAIL, RND) are
refused by name until they are.
"""

from __future__ import annotations

from collections.abc import Mapping

from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType


def supported_reward_signals(
    signals: Mapping[RewardSignalType, RewardSignalSettings], trainer: str
) -> dict[str, RewardSignalSettings]:
    """The reward signals by name (``"extrinsic"``); NotImplementedError for the ones not supported yet, ValueError
    for none at all. ``trainer`` names the trainer in the messages."""
    unsupported = [kind.value for kind in signals if kind != RewardSignalType.EXTRINSIC]
    if unsupported:
        raise NotImplementedError(
            f"reward_signals {unsupported} are not yet supported by rayagents; only extrinsic is, for now"
        )
    if not signals:
        raise ValueError(f"reward_signals is empty: a {trainer} trainer needs at least the extrinsic signal")
    return {kind.value: settings for kind, settings in signals.items()}
