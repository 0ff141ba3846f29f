"""rayagents.configs: the ML-Agents trainer YAML schema, its defaults, loading, errors and round trip."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest

from rayagents.configs.examples import all_example_configs, example_config, example_configs
from rayagents.sims.scenes import example_config_name, scene_names
from rayagents.configs import (
    BehavioralCloningSettings,
    CheckpointSettings,
    ClusterSettings,
    CompletionCriteriaSettings,
    ConditioningType,
    ConfigError,
    ConfigWarning,
    ConstantSettings,
    CuriositySettings,
    EncoderType,
    EngineSettings,
    EnvironmentSettings,
    GAILSettings,
    GaussianSettings,
    MeasureType,
    MemorySettings,
    MultiRangeUniformSettings,
    NetworkSettings,
    POCASettings,
    PPOSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
    RunOptions,
    SACSettings,
    ScheduleType,
    SelfPlaySettings,
    TorchSettings,
    TrainerSettings,
    UniformSettings,
    behavior_settings,
    load_run_options,
    run_options_from_yaml_text,
    to_dict,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared/spec/mlagents-configs"


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"the ML-Agents config corpus is not here ({CORPUS.name} beside the checkout)")
    files = sorted(CORPUS.glob("*.yaml"))
    assert len(files) == 43
    return files


def load_text(text: str) -> RunOptions:
    return run_options_from_yaml_text(text, "test.yaml")


# ---------------------------------------------------------------- defaults (spec §5.2)


def test_trainer_defaults_match_mlagents() -> None:
    settings = TrainerSettings()
    assert settings.trainer_type == "ppo"
    assert settings.checkpoint_interval == 500000
    assert settings.init_path is None
    assert settings.keep_checkpoints == 5
    assert settings.even_checkpoints is False
    assert settings.max_steps == 500000
    assert settings.time_horizon == 64
    assert settings.summary_freq == 50000
    assert settings.threaded is False
    assert settings.self_play is None
    assert settings.behavioral_cloning is None
    assert dict(settings.reward_signals) == {RewardSignalType.EXTRINSIC: RewardSignalSettings()}
    assert RewardSignalSettings().gamma == 0.99 and RewardSignalSettings().strength == 1.0
    assert isinstance(settings.hyperparameters, PPOSettings)


def test_hyperparameter_defaults_match_mlagents() -> None:
    ppo = PPOSettings()
    assert (ppo.batch_size, ppo.buffer_size, ppo.learning_rate) == (1024, 10240, 3e-4)
    assert (ppo.beta, ppo.epsilon, ppo.lambd, ppo.num_epoch, ppo.shared_critic) == (5e-3, 0.2, 0.95, 3, False)
    assert ppo.learning_rate_schedule is ppo.beta_schedule is ppo.epsilon_schedule is ScheduleType.LINEAR
    poca = POCASettings()
    assert (poca.batch_size, poca.buffer_size, poca.learning_rate) == (1024, 10240, 3e-4)
    assert (poca.beta, poca.epsilon, poca.lambd, poca.num_epoch) == (5e-3, 0.2, 0.95, 3)
    assert poca.learning_rate_schedule is poca.beta_schedule is poca.epsilon_schedule is ScheduleType.LINEAR
    sac = SACSettings()
    assert (sac.batch_size, sac.buffer_size, sac.learning_rate) == (128, 50000, 3e-4)
    assert sac.learning_rate_schedule is ScheduleType.CONSTANT
    assert (sac.buffer_init_steps, sac.tau, sac.steps_per_update) == (0, 0.005, 1)
    assert (sac.save_replay_buffer, sac.init_entcoef, sac.reward_signal_steps_per_update) == (False, 1.0, 1)
    assert SACSettings(steps_per_update=7).reward_signal_steps_per_update == 7


def test_network_and_signal_defaults_match_mlagents() -> None:
    network = NetworkSettings()
    assert (network.normalize, network.hidden_units, network.num_layers) == (False, 128, 2)
    assert network.vis_encode_type is EncoderType.SIMPLE and network.memory is None
    assert network.goal_conditioning_type is ConditioningType.HYPER and network.deterministic is False
    assert (MemorySettings().sequence_length, MemorySettings().memory_size) == (64, 128)
    encoders = ("fully_connected", "match3", "simple", "nature_cnn", "resnet")
    assert [EncoderType(name).min_resolution for name in encoders] == [1, 5, 20, 36, 15]
    assert (CuriositySettings().learning_rate, CuriositySettings().encoding_size) == (3e-4, None)
    assert (RNDSettings().learning_rate, RNDSettings().gamma, RNDSettings().strength) == (1e-4, 0.99, 1.0)
    gail = GAILSettings(demo_path="d.demo")
    assert (gail.learning_rate, gail.use_actions, gail.use_vail, gail.encoding_size) == (3e-4, False, False, None)
    bc = BehavioralCloningSettings(demo_path="d.demo")
    assert (bc.steps, bc.strength, bc.samples_per_update, bc.num_epoch, bc.batch_size) == (0, 1.0, 0, None, None)
    play = SelfPlaySettings()
    assert (play.save_steps, play.team_change, play.swap_steps, play.window) == (20000, 100000, 2000, 10)
    assert (play.play_against_latest_model_ratio, play.initial_elo) == (0.5, 1200.0)
    assert SelfPlaySettings(save_steps=300).team_change == 1500


def test_environment_parameter_defaults_match_mlagents() -> None:
    assert (UniformSettings().min_value, UniformSettings().max_value, UniformSettings().seed) == (0.0, 1.0, -1)
    assert (GaussianSettings().mean, GaussianSettings().st_dev) == (1.0, 1.0)
    assert MultiRangeUniformSettings().intervals == ((0.0, 1.0),)
    assert ConstantSettings().value == 0.0
    criteria = CompletionCriteriaSettings(behavior="B")
    assert criteria.measure is MeasureType.REWARD
    assert (criteria.min_lesson_length, criteria.signal_smoothing, criteria.threshold, criteria.require_reset) == (
        0,
        True,
        0.0,
        False,
    )


def test_run_section_defaults_match_mlagents() -> None:
    assert to_dict(RunOptions())["checkpoint_settings"] == {
        "run_id": "ppo",
        "initialize_from": None,
        "load_model": False,
        "resume": False,
        "force": False,
        "train_model": False,
        "inference": False,
        "results_dir": "results",
    }
    assert dataclasses.asdict(EnvironmentSettings()) == {
        "env_path": None,
        "env_args": None,
        "base_port": 5005,
        "num_envs": 1,
        "num_areas": 1,
        "timeout_wait": 60,
        "seed": -1,
        "max_lifetime_restarts": 10,
        "restarts_rate_limit_n": 1,
        "restarts_rate_limit_period_s": 60,
    }
    assert dataclasses.asdict(EngineSettings()) == {
        "width": 84,
        "height": 84,
        "quality_level": 5,
        "time_scale": 20,
        "target_frame_rate": -1,
        "capture_frame_rate": 60,
        "no_graphics": False,
        "no_graphics_monitor": False,
    }
    assert TorchSettings().device is None
    options = RunOptions()
    assert options.default_settings is None and dict(options.behaviors) == {}
    assert options.environment_parameters is None and options.debug is False
    assert options.cluster_settings == ClusterSettings()
    paths = CheckpointSettings(run_id="r", results_dir="out")
    assert Path(paths.write_path) == Path("out/r") and Path(paths.run_logs_dir) == Path("out/r/run_logs")


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainerSettings().max_steps = 3  # type: ignore[misc]


def test_empty_yaml_gives_defaults() -> None:
    assert load_text("") == RunOptions()
    assert load_run_options(None) == RunOptions()


# ---------------------------------------------------------------- the corpus and the examples


def test_every_corpus_file_loads() -> None:
    for path in corpus_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            options = load_run_options(path)
        assert options.behaviors, path.name
        for name, settings in options.behaviors.items():
            expected = {"ppo": PPOSettings, "sac": SACSettings, "poca": POCASettings}[settings.trainer_type]
            assert type(settings.hyperparameters) is expected, (path.name, name)


def test_corpus_quirks() -> None:
    corpus_files()
    pyramids = load_run_options(CORPUS / "imitation_Pyramids.yaml").behaviors["Pyramids"]
    assert pyramids.max_steps == 10_000_000  # YAML reads `1.0e7` as a string
    assert pyramids.hyperparameters.learning_rate_schedule is ScheduleType.LINEAR
    signals = {RewardSignalType.EXTRINSIC, RewardSignalType.CURIOSITY, RewardSignalType.GAIL}
    assert set(pyramids.reward_signals) == signals
    curiosity = pyramids.reward_signals[RewardSignalType.CURIOSITY]
    assert curiosity.network_settings.hidden_units == 256 and curiosity.strength == 0.02
    assert pyramids.behavioral_cloning == BehavioralCloningSettings(
        demo_path="Project/Assets/ML-Agents/Examples/Pyramids/Demos/ExpertPyramid.demo", strength=0.5, steps=150000
    )
    sorter = load_run_options(CORPUS / "ppo_Sorter_curriculum.yaml")
    assert next(iter(sorter.behaviors.values())).network_settings.normalize is False  # `normalize: False`
    sac = load_run_options(CORPUS / "sac_Pyramids.yaml").behaviors["Pyramids"].hyperparameters
    assert isinstance(sac, SACSettings) and sac.steps_per_update == 10.0 and sac.reward_signal_steps_per_update == 10.0
    hallway = load_run_options(CORPUS / "ppo_Hallway.yaml").behaviors["Hallway"].network_settings
    assert hallway.memory is not None
    strikers = load_run_options(CORPUS / "ppo_StrikersVsGoalie.yaml").behaviors
    assert strikers["Goalie"].self_play == SelfPlaySettings(save_steps=50000, team_change=200000, swap_steps=1000)


def test_match3_then_sac_loads_stay_independent() -> None:
    corpus_files()
    match3 = load_run_options(CORPUS / "ppo_Match3.yaml")
    sac = load_run_options(CORPUS / "sac_3DBall.yaml")
    settings = sac.behaviors["3DBall"]
    assert isinstance(settings.hyperparameters, SACSettings)
    assert settings.network_settings.vis_encode_type is EncoderType.SIMPLE
    assert sac.default_settings is None
    assert load_run_options(CORPUS / "ppo_Match3.yaml") == match3


def test_project_examples_load() -> None:
    examples = all_example_configs()
    assert set(example_configs()) < {path.split("/")[1].removesuffix(".yaml") for path in examples}
    for path, resource in examples.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            options = run_options_from_yaml_text(resource.read_text(encoding="utf-8"), resource.name)
        assert options.behaviors, path
        trainer_types = {settings.trainer_type for settings in options.behaviors.values()}
        if resource.parent.name == "imitation":  # any trainer, learning from demonstrations
            assert all(s.behavioral_cloning or len(s.reward_signals) for s in options.behaviors.values()), path
        else:
            assert trainer_types == {resource.parent.name}, f"{path}: {trainer_types} in {resource.parent.name}/"


def test_every_scene_names_its_example_config() -> None:
    examples = example_configs()
    named = {scene: example_config_name(scene) for scene in scene_names()}
    assert {scene for scene, name in named.items() if name} == set(examples)
    for scene, resource in examples.items():
        assert named[scene] == f"configs/{resource.parent.name}/{resource.name}"
    with pytest.raises(ConfigError, match="no example trainer config for scene 'Nowhere'.*CartPole"):
        example_config("Nowhere")


# ---------------------------------------------------------------- default_settings, missing behaviors


MATCH3_LIKE = """
default_settings:
  trainer_type: ppo
  hyperparameters: {batch_size: 16, buffer_size: 120, learning_rate_schedule: constant}
  network_settings: {normalize: true, hidden_units: 256, num_layers: 4, vis_encode_type: match3}
  max_steps: 5000000
behaviors:
  Small:
    network_settings: {hidden_units: 4, num_layers: 1}
  Offpolicy:
    trainer_type: sac
    hyperparameters: {tau: 0.01}
"""


def test_default_settings_are_deep_merged_under_each_behavior() -> None:
    options = load_text(MATCH3_LIKE)
    small = options.behaviors["Small"]
    assert small.network_settings == NetworkSettings(
        normalize=True, hidden_units=4, num_layers=1, vis_encode_type=EncoderType.MATCH3
    )
    assert isinstance(small.hyperparameters, PPOSettings)
    assert (small.hyperparameters.batch_size, small.hyperparameters.buffer_size) == (16, 120)
    # learning_rate_schedule alone given: beta and epsilon copy it
    assert small.hyperparameters.beta_schedule is ScheduleType.CONSTANT
    assert small.hyperparameters.epsilon_schedule is ScheduleType.CONSTANT
    assert small.max_steps == 5000000
    # another trainer type: the default (PPO) hyperparameters are not merged in
    offpolicy = options.behaviors["Offpolicy"]
    assert offpolicy.hyperparameters == SACSettings(tau=0.01)
    assert offpolicy.network_settings.vis_encode_type is EncoderType.MATCH3
    assert options.default_settings is not None and options.default_settings.network_settings.hidden_units == 256


def test_schedule_copy_only_when_unset() -> None:
    text = "behaviors:\n  B:\n    hyperparameters: {learning_rate_schedule: constant, beta_schedule: linear}\n"
    hyper = load_text(text).behaviors["B"].hyperparameters
    assert isinstance(hyper, PPOSettings)
    assert hyper.beta_schedule is ScheduleType.LINEAR and hyper.epsilon_schedule is ScheduleType.CONSTANT


def test_missing_behavior_gets_default_settings_with_a_warning() -> None:
    options = load_text(MATCH3_LIKE)
    with pytest.warns(ConfigWarning, match="'Other' is not in the trainer configuration"):
        settings = behavior_settings(options, "Other")
    assert settings == options.default_settings
    assert behavior_settings(options, "Small?team=1") == options.behaviors["Small"]


def test_missing_behavior_without_default_settings() -> None:
    options = load_text("behaviors:\n  A: {}\n")
    with pytest.warns(ConfigWarning, match="default settings"):
        assert behavior_settings(options, "B") == TrainerSettings()
    with pytest.raises(ConfigError, match="add an entry for B under 'behaviors'"):
        behavior_settings(options, "B", require_configured=True)


# ---------------------------------------------------------------- errors


def test_unknown_key_names_path_and_nearest_key() -> None:
    text = "behaviors:\n  3DBall:\n    hyperparameters:\n      batchsize: 64\n"
    with pytest.raises(ConfigError) as error:
        load_text(text)
    message = str(error.value)
    assert "behaviors.3DBall.hyperparameters.batchsize" in message
    assert "'batch_size'" in message and "test.yaml, line 4" in message
    with pytest.raises(ConfigError, match=r"behavoirs.*Did you mean 'behaviors'"):
        load_text("behavoirs: {}\n")
    with pytest.raises(ConfigError, match=r"behaviors\.B\.network_settings\.hiden_units.*'hidden_units'"):
        load_text("behaviors:\n  B:\n    network_settings: {hiden_units: 3}\n")


def test_wrong_type_names_path_value_and_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"behaviors\.B\.time_horizon: expected a whole number, got 'long'"):
        load_text("behaviors:\n  B:\n    time_horizon: long\n")
    with pytest.raises(ConfigError, match=r"behaviors\.B\.network_settings\.normalize: expected true or false"):
        load_text("behaviors:\n  B:\n    network_settings: {normalize: 3}\n")
    with pytest.raises(ConfigError, match=r"vis_encode_type: 'cnn' is not allowed; use one of: fully_connected"):
        load_text("behaviors:\n  B:\n    network_settings: {vis_encode_type: cnn}\n")
    with pytest.raises(ConfigError, match=r"behaviors\.B\.trainer_type: 'dqn' is not a trainer type; use one of"):
        load_text("behaviors:\n  B:\n    trainer_type: dqn\n")
    with pytest.raises(ConfigError, match=r"behaviors\.B\.reward_signals\.intrinsic: 'intrinsic' is not a reward"):
        load_text("behaviors:\n  B:\n    reward_signals: {intrinsic: {}}\n")


def test_ppo_key_under_sac_names_both() -> None:
    text = "behaviors:\n  B:\n    trainer_type: sac\n    hyperparameters: {beta: 0.01}\n"
    with pytest.raises(ConfigError) as error:
        load_text(text)
    message = str(error.value)
    assert "behaviors.B.hyperparameters.beta" in message
    assert "'ppo'" in message and "'sac'" in message and "SACSettings" in message


def test_value_checks() -> None:
    with pytest.raises(ConfigError, match=r"sequence_length \(64\) is larger than hyperparameters.batch_size \(32\)"):
        load_text("behaviors:\n  B:\n    hyperparameters: {batch_size: 32}\n    network_settings: {memory: {}}\n")
    with pytest.raises(ConfigError, match="memory_size is 7: it must be even"):
        load_text("behaviors:\n  B:\n    network_settings: {memory: {memory_size: 7}}\n")
    with pytest.raises(ConfigError, match="required key 'demo_path' is missing from GAILSettings"):
        load_text("behaviors:\n  B:\n    reward_signals: {gail: {strength: 0.1}}\n")
    with pytest.raises(ConfigError, match="num_envs is 2 but no env_path is set"):
        load_text("env_settings: {num_envs: 2}\n")
    with pytest.raises(ConfigError, match="num_areas is 0"):
        load_text("env_settings: {num_areas: 0}\n")


def test_framework_key_is_ignored_with_a_warning() -> None:
    with pytest.warns(ConfigWarning, match="framework is deprecated"):
        options = load_text("behaviors:\n  B:\n    framework: pytorch\n")
    assert options.behaviors["B"] == TrainerSettings()


def test_number_spellings() -> None:
    options = load_text(
        "behaviors:\n  B:\n    max_steps: 5e5\n    keep_checkpoints: 4.0\n"
        "    hyperparameters: {learning_rate: 3e-4}\n    network_settings: {normalize: False}\n"
    )
    settings = options.behaviors["B"]
    assert settings.max_steps == 500000 and settings.keep_checkpoints == 4
    assert settings.hyperparameters.learning_rate == 3e-4
    with pytest.raises(ConfigError, match="expected a whole number, got 2.5"):
        load_text("behaviors:\n  B:\n    time_horizon: 2.5\n")


def test_even_checkpoints_spread_over_max_steps() -> None:
    options = load_text("behaviors:\n  B: {even_checkpoints: true, max_steps: 1000, keep_checkpoints: 4}\n")
    assert options.behaviors["B"].checkpoint_interval == 250


def test_encoding_size_becomes_hidden_units_without_network_settings() -> None:
    with pytest.warns(ConfigWarning, match="encoding_size is deprecated"):
        options = load_text("behaviors:\n  B:\n    reward_signals: {curiosity: {encoding_size: 64}}\n")
    assert options.behaviors["B"].reward_signals[RewardSignalType.CURIOSITY].network_settings.hidden_units == 64
