"""rayagents-learn's command line: mlagents-learn's options, defaults and precedence, the dry run, its errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rayagents.configs.examples import example_config
from rayagents.cluster.arguments import build_parser, parse_command_line, with_user_flags
from rayagents.cluster.cli import EXIT_OK, EXIT_USAGE, failure_summary, main, resolve_run_options
from rayagents.cluster.training import TrainingFailed
from rayagents.configs import (
    ConfigWarning,
    EncoderType,
    RunOptions,
    override_dests,
    override_section,
    run_options_from_dict,
)

CARTPOLE = str(example_config("CartPole"))

SPEC_DEFAULTS: dict[str, object] = {
    "trainer_config_path": None,
    "env_path": None,
    "load_model": False,
    "resume": False,
    "deterministic": False,
    "force": False,
    "run_id": "ppo",
    "initialize_from": None,
    "seed": -1,
    "train_model": False,
    "inference": False,
    "base_port": 5005,
    "num_envs": 1,
    "num_areas": 1,
    "debug": False,
    "env_args": None,
    "max_lifetime_restarts": 10,
    "restarts_rate_limit_n": 1,
    "restarts_rate_limit_period_s": 60,
    "results_dir": "results",
    "timeout_wait": 60,
    "width": 84,
    "height": 84,
    "quality_level": 5,
    "time_scale": 20,
    "target_frame_rate": -1,
    "capture_frame_rate": 60,
    "no_graphics": False,
    "no_graphics_monitor": False,
    "device": None,
}
"""mlagents-learn's options and defaults (spec §5.1), by argparse dest."""


def write(tmp_path: Path, text: str, name: str = "trainer.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_equal_the_spec_table() -> None:
    values = vars(build_parser().parse_args([]))
    for dest, expected in SPEC_DEFAULTS.items():
        assert values[dest] == expected, dest
    assert values["dry_run"] is False


def test_every_run_option_has_a_flag_whose_default_is_the_schemas() -> None:
    values = vars(build_parser().parse_args([]))
    defaults = RunOptions()
    for dest in override_dests():
        assert dest in values, f"no command-line option for {dest}"
        section = override_section(dest)
        if section is None:
            expected = False
        else:
            expected = getattr(getattr(defaults, section), dest)
        assert values[dest] == expected, dest


def test_no_options_give_the_default_run_options() -> None:
    assert resolve_run_options([]) == RunOptions()


def test_only_typed_options_are_explicit() -> None:
    command_line = parse_command_line(["c.yaml", "--num-envs", "1", "--resume", "--torch", "--dry-run"])
    assert command_line.trainer_config_path == "c.yaml"
    assert dict(command_line.explicit) == {"num_envs": 1, "resume": True}
    assert command_line.dry_run
    assert command_line.removed_flags == ("--torch",)


def test_an_explicit_flag_beats_the_yaml_and_a_default_does_not(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "env_settings:\n  env_path: sim:CartPole\n  num_envs: 4\n  seed: 3\n"
        "engine_settings:\n  time_scale: 1.0\n  no_graphics: true\n"
        "checkpoint_settings:\n  run_id: from_yaml\n  force: true\n"
        "cluster_settings:\n  learner_num_gpus: 1\n  min_envs: 2\n",
    )
    options = resolve_run_options([config])
    assert options.env_settings.num_envs == 4
    assert options.env_settings.seed == 3
    assert options.engine_settings.time_scale == 1.0
    assert options.engine_settings.no_graphics is True
    assert options.checkpoint_settings.run_id == "from_yaml"
    assert options.checkpoint_settings.force is True
    assert options.cluster_settings.learner_num_gpus == 1.0

    options = resolve_run_options([config, "--num-envs", "2", "--time-scale", "5", "--run-id", "cli"])
    assert options.env_settings.num_envs == 2
    assert options.engine_settings.time_scale == 5.0
    assert options.checkpoint_settings.run_id == "cli"
    assert options.env_settings.seed == 3

    # An explicitly typed value equal to the default still beats the YAML (mlagents' DetectDefault).
    options = resolve_run_options([config, "--num-envs", "1", "--seed", "-1", "--learner-gpus", "auto"])
    assert options.env_settings.num_envs == 1
    assert options.env_settings.seed == -1
    assert options.cluster_settings.learner_num_gpus is None


def test_seed_minus_one_is_kept() -> None:
    assert resolve_run_options(["--seed", "-1"]).env_settings.seed == -1
    assert resolve_run_options(["--seed", "42"]).env_settings.seed == 42


def test_env_args_captures_everything_after_it() -> None:
    options = resolve_run_options(
        ["--env", "sim:CartPole", "--env-args", "-screen-width", "640", "--num-envs", "3", "extra"]
    )
    assert options.env_settings.env_args == ("-screen-width", "640", "--num-envs", "3", "extra")
    assert options.env_settings.num_envs == 1
    assert resolve_run_options(["--env-args"]).env_settings.env_args == ()


def test_load_is_taken_as_resume_with_a_deprecation_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--load" not in build_parser().format_help()
    with pytest.warns(ConfigWarning, match="--load is deprecated"):
        options = resolve_run_options(["--load"])
    assert options.checkpoint_settings.resume is True
    assert main(["--load", "--dry-run"]) == EXIT_OK
    assert "warning: --load is deprecated" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--torch", "--tensorflow"])
def test_removed_flags_warn(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(ConfigWarning, match=f"{flag} was removed"):
        assert resolve_run_options([flag]) == RunOptions()
    assert main([flag, "--dry-run"]) == EXIT_OK
    assert f"warning: the command-line option {flag} was removed" in capsys.readouterr().err


def test_train_is_hidden_and_deprecated() -> None:
    assert "--train " not in build_parser().format_help()
    with pytest.warns(ConfigWarning, match="--train is deprecated"):
        assert resolve_run_options(["--train"]).checkpoint_settings.train_model is True


def test_resume_against_initialize_from(tmp_path: Path) -> None:
    both = write(tmp_path, "checkpoint_settings:\n  resume: true\n  initialize_from: old\n", "both.yaml")
    resume = write(tmp_path, "checkpoint_settings:\n  resume: true\n", "resume.yaml")
    initialize = write(tmp_path, "checkpoint_settings:\n  initialize_from: old\n", "init.yaml")

    with pytest.warns(ConfigWarning, match="is resumed"):
        checkpoint = resolve_run_options([both]).checkpoint_settings
    assert (checkpoint.resume, checkpoint.initialize_from) == (True, None)

    with pytest.warns(ConfigWarning, match="starts from 'new'"):
        checkpoint = resolve_run_options([resume, "--initialize-from", "new"]).checkpoint_settings
    assert (checkpoint.resume, checkpoint.initialize_from) == (False, "new")

    with pytest.warns(ConfigWarning, match="is resumed"):
        checkpoint = resolve_run_options([initialize, "--resume"]).checkpoint_settings
    assert (checkpoint.resume, checkpoint.initialize_from) == (True, None)

    with pytest.warns(ConfigWarning, match="is resumed"):
        checkpoint = resolve_run_options(["--resume", "--initialize-from", "new"]).checkpoint_settings
    assert (checkpoint.resume, checkpoint.initialize_from) == (True, None)

    checkpoint = resolve_run_options(["--initialize-from", "new"]).checkpoint_settings
    assert (checkpoint.resume, checkpoint.initialize_from) == (False, "new")


def test_deterministic_sets_every_behavior() -> None:
    options = resolve_run_options([CARTPOLE, "--deterministic"])
    assert options.behaviors["CartPole"].network_settings.deterministic is True
    assert resolve_run_options([CARTPOLE]).behaviors["CartPole"].network_settings.deterministic is False


def test_cluster_options(tmp_path: Path) -> None:
    options = resolve_run_options(
        [
            "--address",
            "ray://head:10001",
            "--env-actor-cpus",
            "2",
            "--env-actor-resources",
            '{"unity": 1}',
            "--env-placement",
            "default",
            "--learner-cpus",
            "4",
            "--learner-gpus",
            "0.5",
            "--learner-device",
            "cuda:1",
            "--min-envs",
            "3",
            "--learner-max-restarts",
            "0",
            "--env-actor-labels",
            '{"rayagents/role": "player"}',
            "--learner-labels",
            '{"accelerator": "H100"}',
        ]
    )
    cluster = options.cluster_settings
    assert cluster.address == "ray://head:10001"
    assert cluster.num_cpus_per_env_actor == 2.0
    assert dict(cluster.env_actor_resources) == {"unity": 1.0}
    assert cluster.env_placement == "DEFAULT"
    assert cluster.learner_num_cpus == 4.0
    assert cluster.learner_num_gpus == 0.5
    assert cluster.learner_device == "cuda:1"
    assert cluster.min_envs == 3
    assert cluster.learner_max_restarts == 0
    assert dict(cluster.env_actor_labels) == {"rayagents/role": "player"}
    assert dict(cluster.learner_labels) == {"accelerator": "H100"}


def test_dry_run_prints_configuration_yaml_that_loads_back(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [CARTPOLE, "--env", "sim:CartPole", "--num-envs", "3", "--seed", "7", "--deterministic", "--run-id", "r1"]
    argv += ["--env-actor-resources", '{"unity": 2}', "--env-args", "-a", "b"]
    assert main(["--dry-run", *argv]) == EXIT_OK
    captured = capsys.readouterr()
    data = yaml.safe_load(captured.out)
    assert run_options_from_dict(data) == resolve_run_options(argv)
    assert data["env_settings"]["num_envs"] == 3
    assert data["env_settings"]["env_args"] == ["-a", "b"]
    assert "# behavior CartPole: trainer ppo, max_steps 100000" in captured.out
    assert "not yet supported" not in captured.out
    assert "Traceback" not in captured.err


def test_dry_run_names_each_behavior_and_refuses_no_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(
        tmp_path,
        "behaviors:\n"
        "  Walker:\n    trainer_type: poca\n    max_steps: 5e5\n    self_play: {}\n"
        "    reward_signals:\n      extrinsic: {}\n      curiosity: {}\n      rnd: {}\n"
        "  Team:\n    trainer_type: poca\n    network_settings:\n      memory: {memory_size: 64, sequence_length: 16}\n"
        "  Eyes:\n    network_settings:\n      vis_encode_type: nature_cnn\n"
        "  Soft:\n    trainer_type: sac\n    max_steps: 2000\n"
        "  Plain:\n    max_steps: 1000\n"
        "environment_parameters:\n  gravity:\n    curriculum:\n"
        "      - {name: easy, value: 9.8, completion_criteria: {measure: progress, behavior: Plain, threshold: 0.5}}\n"
        "      - {name: hard, value: 20.0}\n",
    )
    options = resolve_run_options([config])
    assert options.behaviors["Eyes"].network_settings.vis_encode_type == EncoderType.NATURE_CNN
    assert main([config, "--dry-run"]) == EXIT_OK
    captured = capsys.readouterr()
    out = captured.out
    assert "# behavior Walker: trainer poca, max_steps 500000\n" in out  # POCA with self-play is trained
    assert "# behavior Team: trainer poca, max_steps 500000\n" in out  # POCA with memory is trained
    assert "# behavior Eyes: trainer ppo, max_steps 500000\n" in out  # every visual encoder is trained
    assert "# behavior Soft: trainer sac, max_steps 2000\n" in out  # SAC is trained
    assert "# behavior Plain: trainer ppo, max_steps 1000\n" in out
    assert "not yet supported" not in out and "cannot train" not in captured.err


def test_unknown_key_exits_2_naming_the_path_and_nearest_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, "behaviors:\n  CartPole:\n    max_stesp: 1000\n")
    assert main([config, "--dry-run"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert config in captured.err
    assert "line 3" in captured.err
    assert "behaviors.CartPole.max_stesp" in captured.err
    assert "Did you mean 'max_steps'?" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_missing_config_file_names_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nowhere.yaml")
    assert main([missing, "--dry-run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert missing in err
    assert "trainer_config_path" in err


def test_bad_values_name_the_flag_the_user_typed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--num-envs", "3", "--dry-run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--num-envs" in err and "--env" in err
    assert main(["--env", "sim:CartPole", "--num-areas", "0", "--dry-run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--num-areas" in err and "--env," in err and "--env-path" not in err
    assert main(["--num-envs", "many"]) == EXIT_USAGE
    assert "argument --num-envs: invalid int value: 'many'" in capsys.readouterr().err
    assert main(["--env-actor-resources", "{unity: 1}"]) == EXIT_USAGE
    assert "argument --env-actor-resources" in capsys.readouterr().err
    assert main(["--env-actor-labels", '{"role": 1}']) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "argument --env-actor-labels" in err and "label names to strings" in err
    assert main(["--env", "sim:NoSuchScene", "--dry-run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "sim:NoSuchScene" in err and "sim:CartPole" in err


def test_user_flags_replace_dest_spellings() -> None:
    message = "command-line options --env-path, --device, --load-model, --num-envs: bad"
    expected = "command-line options --env, --torch-device, --load, --num-envs: bad"
    assert with_user_flags(message, build_parser()) == expected


def test_missing_unity_build_is_a_warning_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = str(tmp_path / "NoBuild.x86_64")
    assert main(["--env", build, "--dry-run"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "no Unity player was found" in err and build in err


def test_help_exits_0_and_mentions_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    text = capsys.readouterr().out
    hidden = {"--load", "--train"}
    parser = build_parser()
    for action in parser._actions:
        for flag in action.option_strings:
            if flag not in hidden:
                assert flag in text, flag
    assert "trainer_config_path" in text
    assert capsys.readouterr().err == ""
    flat = " ".join(text.split())
    assert "(default: 5005)" in flat
    assert "sim:NAME" in flat and "5004" in flat


def test_run_options_are_frozen_results() -> None:
    options = resolve_run_options([CARTPOLE, "--num-envs", "1"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.debug = True  # type: ignore[misc]


def test_a_failed_run_says_what_it_left_behind() -> None:
    def failed(learned: bool, saved: bool, steps: dict[str, int]) -> str:
        error = TrainingFailed("boom", learned=learned, saved=saved, checkpoint_steps=steps)
        return failure_summary(error, "results/run")

    assert failed(False, True, {}) == "The run failed before its first policy update: nothing was learned."
    assert failed(True, True, {"A": 10}) == "What was learned up to the failure is saved under results/run."
    assert failed(True, False, {"A": 2000, "B": 1000}) == (
        "The final model could not be saved; what was learned up to the last checkpoints (A at step 2,000, B at "
        "step 1,000) is saved under results/run (--resume carries on from there)."
    )
    assert "what was learned is lost" in failed(True, False, {})


DRIVER_IMPORTS = """
import sys
import rayagents.cluster.cli  # the program: arguments, configs, the run, the console, TensorBoard's writer
import rayagents.cluster.jobs  # rayagents submit / stop / logs
from rayagents.configs import run_options_from_dict
from rayagents.learner.registry import PolicyFactory, play_rules, trainer_types

options = run_options_from_dict({"behaviors": {t: {"trainer_type": t} for t in trainer_types()}})
PolicyFactory(options)  # what the driver hands every EnvActor
rules = [play_rules(settings) for settings in options.behaviors.values()]  # read when the EnvActors start
print("torch loaded:", "torch" in sys.modules, "tensorboardX loaded:", "tensorboardX" in sys.modules)
"""


def test_the_driver_starts_a_run_without_importing_torch() -> None:
    """What the driver imports and runs before Ray is up (the program's modules, the play rules of every trainer
    type, the policy factory) loads neither torch nor tensorboardX, which imports torch: that second of CPU is
    spent in a thread while Ray starts."""
    done = subprocess.run([sys.executable, "-c", DRIVER_IMPORTS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "torch loaded: False tensorboardX loaded: False", done.stdout + done.stderr


def test_the_program_exits_with_mains_code(tmp_path: Path) -> None:
    """``python -m rayagents.cluster.cli`` (and the ``rayagents-learn`` script, which calls the same function)
    exits with what :func:`main` returns: 0 for a valid dry run, 2 for a configuration it refuses."""
    program = [sys.executable, "-m", "rayagents.cluster.cli"]
    valid = subprocess.run([*program, CARTPOLE, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert valid.returncode == EXIT_OK, valid.stderr
    assert "CartPole" in valid.stdout
    missing = tmp_path / "missing.yaml"
    refused = subprocess.run([*program, str(missing), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == EXIT_USAGE, refused.stdout + refused.stderr
    assert "missing.yaml" in refused.stderr
