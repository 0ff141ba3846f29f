"""The EnvActor's exchange (:func:`rayagents.actors.env_actor.play_exchange`) with a policy that has memory, against
a real player: every agent's memory starts from zeros at each of its episodes, is carried from one step to the next
across trajectory cuts, and is each agent's own although 4 areas act in one batch."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.actors.env_actor import play_exchange
from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.trajectories import TrajectoryBuilder
from rayagents.configs.network import MemorySettings, NetworkSettings
from rayagents.learner.memory import MEMORY
from rayagents.learner.networks import Actor
from rayagents.learner.policy import InferencePolicy
from rayagents.learner.weights import actor_weights
from rayagents.protocol.trajectories import Trajectory

pytestmark = pytest.mark.slow

BEHAVIOR = "CartPoleMemory?team=0"
NETWORK = NetworkSettings(hidden_units=16, num_layers=1, memory=MemorySettings(sequence_length=4, memory_size=8))
TIME_HORIZON = 8


def test_memories_start_at_zero_each_episode_and_carry_across_cuts(tmp_path: Path) -> None:
    trajectories: list[Trajectory] = []
    with UnityEnvironment("sim:CartPoleMemory", seed=3, num_areas=4, log_folder=str(tmp_path)) as env:
        env.reset()
        spec = env.behavior_specs[BEHAVIOR]
        torch.manual_seed(0)
        policy = InferencePolicy(BEHAVIOR, spec, NETWORK)
        policy.load_weights(0, actor_weights(Actor(spec.observation_specs, spec.action_spec, NETWORK)))
        builder = TrajectoryBuilder(BEHAVIOR, 0, TIME_HORIZON)
        for _ in range(200):
            trajectories += play_exchange(env, [(BEHAVIOR, policy, builder)])
            env.step_wait()

    by_agent: dict[str, list[Trajectory]] = defaultdict(list)
    for trajectory in trajectories:
        by_agent[trajectory.agent_id].append(trajectory)
    assert len(by_agent) == 4
    episode_starts = continued = 0
    for agent_trajectories in by_agent.values():
        starts_episode = True
        previous: tuple[np.ndarray, np.ndarray] | None = None  # the last step's observation and memory
        for trajectory in agent_trajectories:
            memories, obs = trajectory.extra(MEMORY), trajectory.obs[0]
            if starts_episode:
                assert np.all(memories[0] == 0), "an episode's first decision starts from a zero memory"
                episode_starts += 1
            else:
                assert previous is not None and np.any(memories[0] != 0)
                continued += 1
            steps = [(o, m) for o, m in zip(obs, memories)]
            if previous is not None and not starts_episode:
                steps.insert(0, previous)
            for (o, memory), (_, following) in zip(steps, steps[1:]):
                with torch.no_grad():  # the memory after each step is the LSTM's, from this agent's own
                    _, after = policy.actor.encode([torch.as_tensor(o[None])], torch.as_tensor(memory[None]))
                np.testing.assert_allclose(following, after[0].numpy(), atol=1e-5)
            previous = (obs[-1], memories[-1])
            starts_episode = trajectory.done
    assert episode_starts >= 8 and continued >= 8, (episode_starts, continued)
