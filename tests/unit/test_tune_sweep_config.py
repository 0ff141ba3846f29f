"""A sweep's YAML: the searched keys found in the resolved options, samples laid into the user's YAML, the checks
made before any trial starts, and a trial's command line and share of the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rayagents.cluster.arguments import parse_command_line
from rayagents.cluster.cli import options_from_command_line
from rayagents.cluster.jobs import main as rayagents
from rayagents.cluster.placement import run_bundles
from rayagents.cluster.search_spaces import SearchSpaceError, parse_searches
from rayagents.cluster.sweep_config import check_samples, find_key, locate_keys, sample_yaml, with_values
from rayagents.cluster.sweep_trial import SweepPlan, trial_index
from rayagents.configs import to_dict

BASE = """\
behaviors:
  CartPole:
    trainer_type: ppo
    hyperparameters:
      batch_size: 128
    max_steps: 4000
"""


def resolved(text: str = BASE, *args: str, tmp: Path) -> tuple[dict, dict]:
    path = tmp / "base.yaml"
    path.write_text(text)
    command_line = parse_command_line([str(path), *args])
    return to_dict(options_from_command_line(command_line)), dict(command_line.explicit)


def test_a_key_is_found_as_configuration_yaml_spells_it_also_at_its_default(tmp_path: Path) -> None:
    tree, _ = resolved(tmp=tmp_path)
    assert find_key(tree, "behaviors.CartPole.hyperparameters.learning_rate") == (
        "behaviors", "CartPole", "hyperparameters", "learning_rate",
    )  # fmt: skip
    assert find_key(tree, "env_settings.num_areas") == ("env_settings", "num_areas")


def test_a_name_with_dots_is_matched_whole(tmp_path: Path) -> None:
    tree, _ = resolved(BASE.replace("CartPole", "Walker.v2"), tmp=tmp_path)
    assert find_key(tree, "behaviors.Walker.v2.max_steps") == ("behaviors", "Walker.v2", "max_steps")


def test_a_missing_key_is_one_error_naming_the_key_and_the_keys_there(tmp_path: Path) -> None:
    tree, _ = resolved(tmp=tmp_path)
    with pytest.raises(SearchSpaceError) as error:
        find_key(tree, "behaviors.CartPole.hyperparameters.learning_rat")
    message = str(error.value)
    assert "no key 'learning_rat' under behaviors.CartPole.hyperparameters" in message
    assert "learning_rate" in message and "--dry-run" in message
    with pytest.raises(SearchSpaceError, match="no key 'Pendulum' under behaviors"):
        find_key(tree, "behaviors.Pendulum.max_steps")
    with pytest.raises(SearchSpaceError, match="is a value"):
        find_key(tree, "behaviors.CartPole.max_steps.more")


def test_a_sample_is_laid_into_the_users_yaml_making_the_sections_it_needs() -> None:
    tree = yaml.safe_load(BASE)
    values = {
        ("behaviors", "CartPole", "hyperparameters", "learning_rate"): 0.01,
        ("behaviors", "CartPole", "network_settings", "hidden_units"): 64,
    }
    laid = with_values(tree, values)
    assert laid["behaviors"]["CartPole"]["hyperparameters"] == {"batch_size": 128, "learning_rate": 0.01}
    assert laid["behaviors"]["CartPole"]["network_settings"] == {"hidden_units": 64}
    assert tree == yaml.safe_load(BASE), "the base document was changed"
    text = sample_yaml(BASE, values, ["a header"])
    assert text.startswith("# a header\n") and yaml.safe_load(text) == laid


def test_keys_the_sweep_sets_or_the_command_line_overrides_are_refused(tmp_path: Path) -> None:
    args = ("--env", "sim:CartPole", "--num-envs", "2", "--deterministic")
    tree, explicit = resolved(BASE, *args, tmp=tmp_path)
    options = options_from_command_line(parse_command_line([str(tmp_path / "base.yaml"), *args]))
    with pytest.raises(SearchSpaceError, match="sets checkpoint_settings.run_id"):
        locate_keys(parse_searches(["checkpoint_settings.run_id=choice(['a'])"]), options, explicit)
    with pytest.raises(SearchSpaceError, match=r"\(--num-envs\) is given after --"):
        locate_keys(parse_searches(["env_settings.num_envs=choice([1, 2])"]), options, explicit)
    with pytest.raises(SearchSpaceError, match=r"\(--deterministic\)"):
        locate_keys(
            parse_searches(["behaviors.CartPole.network_settings.deterministic=choice([True])"]), options, explicit
        )
    keys = locate_keys(parse_searches(["env_settings.num_areas=choice([1, 2])"]), options, explicit)
    assert keys[0].path == ("env_settings", "num_areas")


def test_a_value_the_schema_refuses_is_found_before_the_sweep(tmp_path: Path) -> None:
    tree, explicit = resolved(tmp=tmp_path)
    options = options_from_command_line(parse_command_line([str(tmp_path / "base.yaml")]))
    good = locate_keys(parse_searches(["behaviors.CartPole.hyperparameters.batch_size=choice([64, 256])"]), options, {})
    check_samples(BASE, "base.yaml", good, explicit)
    bad = locate_keys(
        parse_searches(["behaviors.CartPole.hyperparameters.batch_size=choice([64, 'large'])"]), options, {}
    )
    with pytest.raises(SearchSpaceError, match="the value 'large' does not fit behaviors.CartPole.hyperparameters"):
        check_samples(BASE, "base.yaml", bad, explicit)


def plan(tmp_path: Path, *learn_args: str, force: bool = False) -> SweepPlan:
    options = options_from_command_line(parse_command_line([str(tmp_path / "base.yaml")]))
    spaces = parse_searches(["behaviors.CartPole.hyperparameters.learning_rate=uniform(0.001, 0.01)"])
    keys = locate_keys(spaces, options, {})
    return SweepPlan(
        base_text=BASE, config_path=str(tmp_path / "base.yaml"), keys=keys, learn_args=learn_args, run_id="sweep",
        results_dir=str(tmp_path / "results"), behavior="CartPole", resume_runs=False, force=force,
        learner_num_gpus=0.0,
    )  # fmt: skip


def test_a_trial_reads_its_yaml_with_its_own_run_id_as_rayagents_learn_does(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    sweep = plan(tmp_path, "--env", "sim:CartPole", "--num-envs", "2", force=True)
    trial_yaml = tmp_path / "trial.yaml"
    trial_yaml.write_text(sweep.trial_yaml({"behaviors.CartPole.hyperparameters.learning_rate": 0.005}))
    argv = sweep.trial_argv(str(trial_yaml), 3, resume=False)
    options = options_from_command_line(parse_command_line(argv))
    assert options.checkpoint_settings.run_id == "sweep_3"
    assert options.checkpoint_settings.results_dir == str(tmp_path / "results")
    assert options.checkpoint_settings.force and not options.checkpoint_settings.resume
    assert options.behaviors["CartPole"].hyperparameters.learning_rate == 0.005
    assert options.behaviors["CartPole"].hyperparameters.batch_size == 128
    assert options.env_settings.num_envs == 2
    assert "--resume" in sweep.trial_argv(str(trial_yaml), 3, resume=True)
    assert trial_index("a1b2c_00003") == 3


def test_a_trials_share_is_its_learner_and_its_env_actors_with_nothing_for_the_trial_itself(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    sweep = plan(tmp_path, "--env", "sim:CartPole", "--num-envs", "3", "--env-actor-cpus", "0.5")
    factory = sweep.trial_resources({"behaviors.CartPole.hyperparameters.learning_rate": 0.005})
    assert factory.head_bundle_is_empty
    assert factory.bundles == [{"CPU": 1.0}, {"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.5}]
    assert factory.strategy == "SPREAD"
    layout = run_bundles(sweep.trial_options({"behaviors.CartPole.hyperparameters.learning_rate": 0.005}))
    assert (layout.learner_index, layout.env_indexes) == (0, (1, 2, 3))


def test_the_command_refuses_a_bad_search_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "base.yaml"
    config.write_text(BASE)
    code = rayagents(["tune", str(config), "--search", "behaviors.CartPole.hyperparameters.lr=uniform(0, 1)",
                      "--", "--env", "sim:CartPole"])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "error: --search behaviors.CartPole.hyperparameters.lr: the configuration has no key 'lr'" in error
    code = rayagents(["tune", str(config), "--search", "behaviors.CartPole.max_steps=uniform(1)",
                      "--", "--env", "sim:CartPole"])  # fmt: skip
    assert code == 2 and "uniform takes 2 numbers" in capsys.readouterr().err
    code = rayagents(["tune", str(config), "--search", "behaviors.CartPole.max_steps=randint(1, 9)",
                      "--", "--env", "sim:CartPole", "--run-id", "x"])  # fmt: skip
    assert code == 2 and "--run-id: give it before --" in capsys.readouterr().err
    code = rayagents(["tune", str(config), "--search", "behaviors.CartPole.max_steps=randint(1, 9)"])
    assert code == 2 and "a sweep needs --env" in capsys.readouterr().err
