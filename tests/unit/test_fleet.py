"""The EnvActor fleet's plain parts: what each EnvActor reserves (told to the autoscaler) and is set up with."""

from __future__ import annotations

import dataclasses

from rayagents.cluster.fleet import behavior_play, env_actor_bundles, env_actor_settings
from rayagents.configs import RunOptions, TrainerSettings
from rayagents.configs.run import ClusterSettings, EnvironmentSettings


def options(num_envs: int = 3, num_areas: int = 4, **cluster: object) -> RunOptions:
    return RunOptions(
        behaviors={"Walker": TrainerSettings(threaded=True, time_horizon=64)},
        env_settings=EnvironmentSettings(env_path="sim:CartPole", num_envs=num_envs, num_areas=num_areas),
        cluster_settings=ClusterSettings(**cluster),  # type: ignore[arg-type]
    )


def test_the_autoscaler_is_asked_for_one_bundle_per_env_actor_with_its_cpus_and_resources() -> None:
    bundles = env_actor_bundles(options(num_envs=3, num_cpus_per_env_actor=2.0, env_actor_resources={"unity": 1.0}))
    assert bundles == [{"CPU": 2.0, "unity": 1.0}] * 3
    bundles[0]["CPU"] = 9.0
    assert bundles[1]["CPU"] == 2.0, "each bundle is its own dict"


def test_nothing_is_asked_for_env_actors_that_reserve_nothing() -> None:
    assert env_actor_bundles(options(num_cpus_per_env_actor=0.0)) == []
    assert env_actor_bundles(options(num_cpus_per_env_actor=0.0, env_actor_resources={"unity": 0.5})) == [
        {"unity": 0.5}
    ] * 3


def test_each_env_actor_gets_its_own_index_log_folder_and_area_seeds() -> None:
    run = options(num_envs=3, num_areas=4)
    settings = [env_actor_settings(run, index, seed=10, log_folder="logs") for index in range(3)]
    assert [s.index for s in settings] == [0, 1, 2]
    assert [s.seed for s in settings] == [10, 14, 18]  # areas seed + area index: no two areas share a seed
    assert {s.log_folder for s in settings} == {"logs"}
    assert settings[0].behaviors["Walker"] == behavior_play(run.behaviors["Walker"])
    assert settings[0].behaviors["Walker"].time_horizon == 64


def test_an_env_actor_streams_threaded_or_not_and_cuts_at_the_time_horizon() -> None:
    assert behavior_play(TrainerSettings(threaded=True)) == behavior_play(TrainerSettings())
    assert behavior_play(dataclasses.replace(TrainerSettings(), time_horizon=5)).time_horizon == 5
