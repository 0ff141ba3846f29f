"""What a trainer's summaries carry to the driver, without torch: the statistic names both sides read, and
:class:`TrainerSummary`.

The driver (console, TensorBoard, ``training_status.json``) imports this module; the trainer (:mod:`trainer`) and
self-play (:mod:`self_play`) write under these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CUMULATIVE_REWARD = "Environment/Cumulative Reward"
"""The return of each episode that ended (ML-Agents' statistic)."""
GROUP_CUMULATIVE_REWARD = "Environment/Group Cumulative Reward"
"""The group rewards of an agent's episode that ended with its whole group's (ML-Agents' POCA reports it)."""
EPISODE_LENGTH = "Environment/Episode Length"
"""The length of each episode that ended (ML-Agents' statistic)."""
DROPPED_STEPS = "Policy/Dropped Steps"
"""rayagents' own statistic: steps received in the summary period but not trained on (acted by weights older than
the algorithm accepts, or sent after ``max_steps``)."""
POLICY_LAG = "Policy/Policy Lag"
"""rayagents' own statistic: how many updates behind the trainer's weights the acting weights were, averaged over
the experiences received."""
ELO_STAT = "Self-play/ELO"
"""The learning policy's rating, added at each game its team finishes (ML-Agents' statistic)."""


@dataclass(frozen=True)
class TrainerSummary:
    """One summary of a trainer: what TensorBoard and the console show every ``summary_freq`` steps."""

    behavior_name: str
    """The behavior name (without ``?team=``): the TensorBoard category."""
    step: int
    """The step the summary is written at."""
    scalars: Mapping[str, float]
    """Each statistic's mean over the period, under ML-Agents' names."""
    cumulative_rewards: tuple[float, ...]
    """The returns of the episodes that ended in the period (the ``Environment/Cumulative Reward`` histogram)."""
    training: bool
    """The trainer was still training (ML-Agents' console "Training." / "Not Training.")."""
