"""``UnityMultiAgentEnv`` on real players of the simulation host, and RLlib PPO training on it with real Ray.

- Every kind of scene gives RLlib what it reads: spaces of each kind, observations inside them, agent ids
  ``Name?team=N_AGENT``, terminations and truncations, two teams, two behaviors, action masks.
- A player killed mid-episode ends the episode truncated and the next ``reset()`` plays on a new player.
- RLlib PPO trains a few iterations on a player per EnvRunner, and no player outlives ``algo.stop()``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

from processes import sims_players_under  # noqa: E402

from rayagents.rllib import UnityMultiAgentEnv, behavior_policies  # noqa: E402
from rayagents.rllib.spaces import MASK_KEY  # noqa: E402

pytestmark = pytest.mark.slow


def play_episode(env: UnityMultiAgentEnv, seed: int) -> tuple[dict[str, float], dict[str, bool], dict[str, bool], int]:
    """One episode of random actions; checks every observation against its space. Returns each agent's return,
    the last step's terminateds and truncateds, and the steps played."""
    rng = np.random.default_rng(seed)
    observations, _ = env.reset()
    returns: dict[str, float] = {}
    steps = 0
    while True:
        for rllib_id, observation in observations.items():
            assert env.get_observation_space(rllib_id).contains(observation), rllib_id
        actions: dict[str, Any] = {}
        for rllib_id in env.agents:
            space = env.get_action_space(rllib_id)
            space.seed(int(rng.integers(1 << 31)))
            action = space.sample()
            if isinstance(observations[rllib_id], dict):  # masked: pick an allowed action
                allowed = np.flatnonzero(observations[rllib_id][MASK_KEY])
                action = int(rng.choice(allowed))
            actions[rllib_id] = action
        observations, rewards, terminateds, truncateds, _ = env.step(actions)
        steps += 1
        for rllib_id, reward in rewards.items():
            returns[rllib_id] = returns.get(rllib_id, 0.0) + reward
        if terminateds["__all__"] or truncateds["__all__"]:
            for rllib_id, observation in observations.items():
                assert env.get_observation_space(rllib_id).contains(observation), rllib_id
            return returns, terminateds, truncateds, steps


def test_cartpole_areas_are_agents_of_one_episode_that_ends_when_all_fell(tmp_path: Path) -> None:
    env = UnityMultiAgentEnv({"file_name": "sim:CartPole", "num_areas": 3, "log_folder": str(tmp_path)})
    try:
        assert sorted(env.possible_agents) == ["CartPole?team=0_0", "CartPole?team=0_1", "CartPole?team=0_2"]
        assert str(env.get_action_space("CartPole?team=0_0")) == "Discrete(2)"
        assert env.get_observation_space("CartPole?team=0_1").shape == (4,)
        returns, terminateds, truncateds, steps = play_episode(env, 0)
        assert set(returns) == set(env.possible_agents)
        assert all(1.0 <= value <= steps for value in returns.values())  # +1 a step until the pole falls
        assert terminateds["__all__"] and not truncateds["__all__"]
        assert max(returns.values()) == steps  # the episode lasts until the last pole falls
        assert [p.name[:9] for p in tmp_path.glob("Player-*.log")] == ["Player-0-"]
    finally:
        env.close()
    assert sims_players_under(tmp_path) == []


def test_the_episode_horizon_truncates_every_agent_still_playing() -> None:
    env = UnityMultiAgentEnv({"file_name": "sim:Pendulum", "episode_horizon": 30})
    try:
        assert str(env.get_action_space("Pendulum?team=0_0")) == "Box(-1.0, 1.0, (1,), float32)"
        returns, terminateds, truncateds, steps = play_episode(env, 1)
        assert steps == 30 and truncateds == {"Pendulum?team=0_0": True, "__all__": True}
        assert not terminateds["__all__"] and returns["Pendulum?team=0_0"] < 0.0
    finally:
        env.close()


def test_two_teams_with_masks_and_two_behaviors() -> None:
    board = UnityMultiAgentEnv({"file_name": "sim:ConnectFour", "action_masks": True})
    try:
        returns, terminateds, _, _ = play_episode(board, 2)
        assert set(returns) == {"ConnectFour?team=0_0", "ConnectFour?team=1_1"}  # one agent per team
        assert sorted(returns.values()) in ([-1.0, 1.0], [0.0, 0.0])  # a win and a loss, or a draw
        assert terminateds["__all__"]
        space = board.get_observation_space("ConnectFour?team=1_1")
        assert space[MASK_KEY].shape == (7,) and space["observations"].shape == (2, 6, 7)
    finally:
        board.close()
    tag = UnityMultiAgentEnv({"file_name": "sim:SimpleTag"})
    try:
        assert sorted(tag.behaviors) == ["Predator?team=0", "Prey?team=0"]
        assert tag.get_observation_space("Predator?team=0_0").shape == (16,)
        assert tag.get_observation_space("Prey?team=0_3").shape == (14,)
        returns, _, truncateds, steps = play_episode(tag, 3)
        assert len(returns) == 4 and truncateds["__all__"] and steps == 25  # MPE's 25 cycles
    finally:
        tag.close()


def test_visual_and_variable_length_sensors() -> None:
    for scene, shapes in (("CartPoleVisual", [(3, 40, 60)]), ("Gather", [(6, 4), (5,)])):
        env = UnityMultiAgentEnv({"file_name": f"sim:{scene}", "episode_horizon": 20})
        try:
            space = env.get_observation_space(f"{scene}?team=0_0")
            assert [s.shape for s in getattr(space, "spaces", (space,))] == shapes
            play_episode(env, 4)
        finally:
            env.close()


def test_a_killed_player_truncates_the_episode_and_is_replaced(tmp_path: Path) -> None:
    env = UnityMultiAgentEnv({"file_name": "sim:Pendulum", "log_folder": str(tmp_path), "timeout_wait": 10})
    try:
        observations, _ = env.reset()
        env.step({"Pendulum?team=0_0": np.zeros(1, np.float32)})
        (first,) = sims_players_under(tmp_path)
        os.kill(first, signal.SIGKILL)
        observations, rewards, terminateds, truncateds, _ = env.step({"Pendulum?team=0_0": np.zeros(1, np.float32)})
        assert truncateds == {"Pendulum?team=0_0": True, "__all__": True} and not terminateds["__all__"]
        assert set(observations) == {"Pendulum?team=0_0"}  # the last observation before the failure
        observations, _ = env.reset()
        assert set(observations) == {"Pendulum?team=0_0"}
        (second,) = sims_players_under(tmp_path)
        assert second != first
    finally:
        env.close()


def test_rllib_ppo_trains_on_players_and_leaves_none(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from ray.rllib.algorithms.ppo import PPOConfig

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        policies = behavior_policies({"file_name": "sim:SimpleTag", "log_folder": str(tmp_path)})
        assert policies.names == {"Predator", "Prey"}
        config = (
            policies.apply(PPOConfig())
            .env_runners(num_env_runners=1, rollout_fragment_length=100)
            .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
        )
        algo = config.build_algo()
        try:
            deadline = time.monotonic() + 120
            for _ in range(2):
                result = algo.train()
                assert time.monotonic() < deadline
            runners = result["env_runners"]
            assert runners["num_env_steps_sampled_lifetime"] >= 400
            assert set(runners["module_episode_returns_mean"]) == {"Predator", "Prey"}
            assert set(result["learners"]) >= {"Predator", "Prey"}
            assert sims_players_under(tmp_path)  # the EnvRunner's player is up
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    deadline = time.monotonic() + 15
    while sims_players_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sims_players_under(tmp_path) == []
