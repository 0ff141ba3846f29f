"""EnvActors started by a test beside a real LearnerActor (what the driver's fleet does, without the driver)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray

from rayagents.actors.env_actor import BehaviorPlay, EnvActor, EnvActorSettings
from rayagents.configs import RunOptions
from rayagents.learner.registry import PolicyFactory


def env_actors(
    learner: Any,
    options: RunOptions,
    *,
    env_path: str,
    behavior: str,
    count: int,
    num_areas: int,
    time_horizon: int,
    log_folder: Path,
) -> list[Any]:
    """``count`` EnvActors of ``env_path`` (seeds 0, 10, 20, ...) feeding ``learner``, not started yet (the caller
    starts them where it closes them too); a collect call plays about 0.05 s."""
    play_rules = BehaviorPlay(time_horizon=time_horizon)
    return [
        ray.remote(EnvActor).remote(
            EnvActorSettings(
                index=i,
                env_path=env_path,
                behaviors={behavior: play_rules},
                default_behavior=play_rules,
                num_areas=num_areas,
                seed=10 * i,
                log_folder=str(log_folder),
                seconds_per_call=0.05,
            ),
            learner,
            PolicyFactory(options),
        )
        for i in range(count)
    ]
