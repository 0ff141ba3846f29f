"""rayagents.configs: environment parameters (samplers, curricula), round trip, command-line overrides."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from rayagents.configs.examples import all_example_configs, example_config
from rayagents.configs import (
    CompletionCriteriaSettings,
    ConfigError,
    ConfigWarning,
    ConstantSettings,
    GaussianSettings,
    Lesson,
    MeasureType,
    MultiRangeUniformSettings,
    PPOSettings,
    UniformSettings,
    apply_cli_overrides,
    dump_yaml,
    load_run_options,
    override_section,
    run_options_from_dict,
    run_options_from_yaml_text,
    to_dict,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared/spec/mlagents-configs"

CURRICULUM = """
behaviors:
  Jumper: {}
environment_parameters:
  mass: 2.5
  scale:
    sampler_type: gaussian
    sampler_parameters: {mean: 2.0, st_dev: 0.5, seed: 7}
  gaps:
    sampler_type: multirangeuniform
    sampler_parameters: {intervals: [[1, 2], [4.5, 6]]}
  wall:
    curriculum:
      - name: Low
        completion_criteria: {behavior: Jumper, threshold: 0.8, min_lesson_length: 100}
        value: {sampler_type: uniform, sampler_parameters: {min_value: 0.0, max_value: 4.0}}
      - name: Middle
        completion_criteria: {behavior: Jumper, measure: progress, threshold: 0.5, require_reset: true}
        value: 5
      - name: High
        value: {sampler_type: constant, sampler_parameters: {value: 8}}
"""


def load_text(text: str):
    return run_options_from_yaml_text(text, "test.yaml")


def test_curriculum_and_samplers_parse() -> None:
    parameters = load_text(CURRICULUM).environment_parameters
    assert parameters is not None
    assert parameters["mass"].curriculum == (Lesson(value=ConstantSettings(value=2.5), name="mass"),)
    assert parameters["scale"].curriculum[0].value == GaussianSettings(mean=2.0, st_dev=0.5, seed=7)
    assert parameters["gaps"].curriculum[0].value == MultiRangeUniformSettings(intervals=((1.0, 2.0), (4.5, 6.0)))
    low, middle, high = parameters["wall"].curriculum
    assert low.name == "Low" and low.value == UniformSettings(min_value=0.0, max_value=4.0)
    assert low.completion_criteria == CompletionCriteriaSettings(
        behavior="Jumper", measure=MeasureType.REWARD, threshold=0.8, min_lesson_length=100
    )
    assert middle.value == ConstantSettings(value=5.0)
    assert middle.completion_criteria is not None and middle.completion_criteria.require_reset is True
    assert middle.completion_criteria.measure is MeasureType.PROGRESS
    assert high.value == ConstantSettings(value=8.0) and high.completion_criteria is None


def test_corpus_curriculum() -> None:
    if not CORPUS.is_dir():
        pytest.skip("the ML-Agents config corpus is not here")
    parameters = load_run_options(CORPUS / "ppo_WallJump_curriculum.yaml").environment_parameters
    assert parameters is not None and set(parameters) == {"big_wall_height", "small_wall_height"}
    big = parameters["big_wall_height"].curriculum
    assert [lesson.name for lesson in big] == ["Lesson0", "Lesson1", "Lesson2", "Lesson3"]
    assert big[1].value == UniformSettings(min_value=4.0, max_value=7.0)
    assert big[3].value == ConstantSettings(value=8.0)
    assert big[0].completion_criteria is not None and big[0].completion_criteria.threshold == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "p: {curriculum: [{name: a, value: 1}, {name: b, value: 2}]}",
            r"environment_parameters\.p: lesson 0 \('a'\) is not the last one but has no completion_criteria",
        ),
        (
            "p: {sampler_type: uniform, sampler_parameters: {min_value: 3, max_value: 1}}",
            "min_value \\(3.0\\) is greater than its max_value",
        ),
        ("p: {sampler_type: beta, sampler_parameters: {}}", "'beta' is not allowed; use one of: uniform"),
        ("p: {sampler_type: uniform}", "has no sampler_parameters"),
        ("p: {sampler_parameters: {}}", "has no sampler_type"),
        ("p: {sampler_type: gaussian, sampler_parameters: {mu: 1}}", r"sampler_parameters\.mu: unknown key 'mu'"),
        ("p: {sampler_type: multirangeuniform, sampler_parameters: {intervals: [[1, 2, 3]]}}", "exactly 2 values"),
        ("p: {sampler_type: multirangeuniform, sampler_parameters: {intervals: [[3, 2]]}}", "minimum is greater"),
        (
            "p: {curriculum: [{name: a, value: 1, completion_criteria: {behavior: B, measure: progress, "
            "threshold: 2}}, {name: b, value: 2}]}",
            "with measure 'progress' it must be between 0 and 1",
        ),
        (
            "p: {curriculum: [{name: a, value: 1, completion_criteria: {threshold: 0.5}}, {name: b, value: 2}]}",
            r"curriculum\[0\]\.completion_criteria: the required key 'behavior' is missing",
        ),
    ],
)
def test_environment_parameter_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_text("environment_parameters:\n  " + text + "\n")


def test_final_lesson_criteria_warn() -> None:
    text = (
        "environment_parameters:\n  p: {curriculum: [{name: a, value: 1, completion_criteria: {behavior: B}}, "
        "{name: b, value: 2, completion_criteria: {behavior: B}}]}\n"
    )
    with pytest.warns(ConfigWarning, match="final lesson of 'p' has completion_criteria; they are ignored"):
        load_text(text)


# ---------------------------------------------------------------- round trip


def round_trip_files() -> list[Path]:
    files = [Path(str(resource)) for resource in all_example_configs().values()]
    if CORPUS.is_dir():
        files += sorted(CORPUS.glob("*.yaml"))
    return files


def test_to_dict_round_trip() -> None:
    for path in round_trip_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            options = load_run_options(path)
            again = run_options_from_yaml_text(dump_yaml(options), f"dump of {path.name}")
            assert again == options, path.name
            assert run_options_from_dict(to_dict(options)) == options, path.name
    curriculum = load_text(CURRICULUM)
    assert load_text(dump_yaml(curriculum)) == curriculum


def test_to_dict_shape() -> None:
    data = to_dict(load_text(CURRICULUM))
    assert list(data) == [
        "default_settings",
        "behaviors",
        "env_settings",
        "engine_settings",
        "environment_parameters",
        "checkpoint_settings",
        "torch_settings",
        "cluster_settings",
        "debug",
    ]
    jumper = data["behaviors"]["Jumper"]
    assert jumper["hyperparameters"]["learning_rate_schedule"] == "linear"
    assert jumper["reward_signals"] == {
        "extrinsic": {"gamma": 0.99, "strength": 1.0, "network_settings": jumper["network_settings"]}
    }
    assert data["environment_parameters"]["mass"] == {
        "curriculum": [
            {
                "value": {"sampler_type": "constant", "sampler_parameters": {"seed": -1, "value": 2.5}},
                "name": "mass",
                "completion_criteria": None,
            }
        ]
    }


# ---------------------------------------------------------------- cluster settings


def test_cluster_settings() -> None:
    options = load_text(
        "cluster_settings:\n  num_cpus_per_env_actor: 2\n  env_actor_resources: {unity: 1}\n"
        "  learner_num_gpus: auto\n  min_envs: 3\n  address: auto\n"
    )
    cluster = options.cluster_settings
    assert cluster.num_cpus_per_env_actor == 2.0 and dict(cluster.env_actor_resources) == {"unity": 1.0}
    assert cluster.learner_num_gpus is None and cluster.min_envs == 3 and cluster.address == "auto"
    assert load_text("cluster_settings: {learner_num_gpus: 0.5}").cluster_settings.learner_num_gpus == 0.5
    with pytest.raises(ConfigError, match=r"cluster_settings\.learner_num_gpus: expected a number, got 'many'"):
        load_text("cluster_settings: {learner_num_gpus: many}")
    with pytest.raises(ConfigError, match="min_envs is 0"):
        load_text("cluster_settings: {min_envs: 0}")
    assert load_text("").cluster_settings.learner_max_restarts == 3
    labelled = load_text(
        "cluster_settings:\n  env_actor_labels: {rayagents/role: player}\n  learner_labels: {zone: 'in(a,b)'}\n"
    ).cluster_settings
    assert dict(labelled.env_actor_labels) == {"rayagents/role": "player"}
    assert dict(labelled.learner_labels) == {"zone": "in(a,b)"}
    assert dict(load_text("").cluster_settings.env_actor_labels) == {}
    assert load_text("cluster_settings: {learner_max_restarts: -1}").cluster_settings.learner_max_restarts == -1
    with pytest.raises(ConfigError, match="learner_max_restarts is -2"):
        load_text("cluster_settings: {learner_max_restarts: -2}")


# ---------------------------------------------------------------- command-line overrides


YAML_WITH_SECTIONS = """
behaviors:
  B: {}
env_settings: {env_path: builds/B, num_envs: 2, seed: 3}
engine_settings: {time_scale: 5}
checkpoint_settings: {run_id: from_yaml}
torch_settings: {device: cpu}
"""


def test_cli_values_route_to_their_sections_and_beat_the_yaml() -> None:
    options = load_text(YAML_WITH_SECTIONS)
    result = apply_cli_overrides(
        options,
        {
            "num_envs": 4,
            "run_id": "from_cli",
            "time_scale": 1,
            "device": "cuda:1",
            "debug": True,
            "env_args": ["--level", "3"],
            "num_cpus_per_env_actor": 0.5,
            "learner_num_gpus": "auto",
        },
    )
    assert result.env_settings.num_envs == 4 and result.env_settings.seed == 3
    assert result.env_settings.env_args == ("--level", "3")
    assert result.checkpoint_settings.run_id == "from_cli"
    assert result.engine_settings.time_scale == 1.0 and result.torch_settings.device == "cuda:1"
    assert result.debug is True and result.cluster_settings.num_cpus_per_env_actor == 0.5
    assert result.cluster_settings.learner_num_gpus is None
    assert apply_cli_overrides(options, {"learner_num_gpus": 2}).cluster_settings.learner_num_gpus == 2.0
    assert apply_cli_overrides(options, {}) == options
    assert [override_section(name) for name in ("resume", "env_path", "width", "device", "debug")] == [
        "checkpoint_settings",
        "env_settings",
        "engine_settings",
        "torch_settings",
        None,
    ]


def test_cli_override_errors() -> None:
    options = load_text(YAML_WITH_SECTIONS)
    with pytest.raises(ConfigError, match="command-line option --num-envs: expected a whole number"):
        apply_cli_overrides(options, {"num_envs": "many"})
    with pytest.raises(ConfigError, match="'colour' has no place in the run options"):
        apply_cli_overrides(options, {"colour": "red"})
    with pytest.raises(ConfigError, match="--num-areas.*num_areas is 0"):
        apply_cli_overrides(options, {"num_areas": 0})


def test_deterministic_flag_reaches_every_behavior() -> None:
    loaded = load_text("default_settings: {}\nbehaviors:\n  A: {}\n  B: {}\n")
    options = apply_cli_overrides(loaded, {"deterministic": True})
    assert all(settings.network_settings.deterministic for settings in options.behaviors.values())
    assert options.default_settings is not None and options.default_settings.network_settings.deterministic


def test_resume_and_initialize_from_precedence() -> None:
    both = "checkpoint_settings: {resume: true, initialize_from: old}\n"
    with pytest.warns(ConfigWarning, match="resumed and initialize_from is ignored"):
        from_yaml = load_text(both)
    assert from_yaml.checkpoint_settings.resume and from_yaml.checkpoint_settings.initialize_from is None

    yaml_resume = load_text("checkpoint_settings: {resume: true}\n")
    with pytest.warns(ConfigWarning, match="resume is ignored"):
        cli_init = apply_cli_overrides(yaml_resume, {"initialize_from": "old"})
    assert not cli_init.checkpoint_settings.resume and cli_init.checkpoint_settings.initialize_from == "old"

    yaml_init = load_text("checkpoint_settings: {initialize_from: old}\n")
    with pytest.warns(ConfigWarning, match="initialize_from is ignored"):
        cli_resume = apply_cli_overrides(yaml_init, {"resume": True})
    assert cli_resume.checkpoint_settings.resume and cli_resume.checkpoint_settings.initialize_from is None

    with pytest.warns(ConfigWarning, match="initialize_from is ignored"):
        cli_load = apply_cli_overrides(yaml_init, {"load_model": True})
    assert cli_load.checkpoint_settings.resume and cli_load.checkpoint_settings.initialize_from is None


def test_hyperparameters_of_examples_are_typed() -> None:
    options = load_run_options(example_config("CartPole"))
    assert isinstance(options.behaviors["CartPole"].hyperparameters, PPOSettings)
