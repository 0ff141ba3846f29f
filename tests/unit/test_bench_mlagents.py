"""bench/mlagents.py's pure parts: finding mlagents-learn, the YAML and flags both trainers get, what a run
printed and wrote, the processes a run left, the rows. Nothing here needs ML-Agents installed."""

from __future__ import annotations

import json
import socket
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rayagents.cluster.cli import resolve_run_options
from rayagents.cluster.console import summary_line
from rayagents.configs.loader import run_options_from_dict

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not of the installed package

from bench import mlagents  # noqa: E402
from bench.mlagents import ProcessInfo, TimedRun  # noqa: E402
from bench.table import rewrite_readme  # noqa: E402


def _which(known: dict[str, str]) -> Callable[[str], str | None]:
    """A stand-in for shutil.which that knows only ``known`` (name or path → resolved path)."""
    return known.get


# ---- finding mlagents-learn ----------------------------------------------------------------------------------------


def test_the_flag_beats_the_environment_variable_which_beats_path() -> None:
    which = _which(
        {
            "/opt/flag/mlagents-learn": "/opt/flag/mlagents-learn",
            "/opt/env/mlagents-learn": "/opt/env/mlagents-learn",
            "mlagents-learn": "/usr/bin/mlagents-learn",
        }
    )
    environ = {"MLAGENTS_LEARN": "/opt/env/mlagents-learn"}
    assert mlagents.find_mlagents_learn("/opt/flag/mlagents-learn", environ, which) == Path("/opt/flag/mlagents-learn")
    assert mlagents.find_mlagents_learn(None, environ, which) == Path("/opt/env/mlagents-learn")
    assert mlagents.find_mlagents_learn(None, {}, which) == Path("/usr/bin/mlagents-learn")
    assert mlagents.find_mlagents_learn(None, {"MLAGENTS_LEARN": "  "}, which) == Path("/usr/bin/mlagents-learn")


def test_no_mlagents_learn_anywhere_is_not_an_error() -> None:
    assert mlagents.find_mlagents_learn(None, {}, _which({})) is None


def test_a_named_mlagents_learn_that_is_not_there_is_an_error_naming_where_it_came_from() -> None:
    which = _which({"mlagents-learn": "/usr/bin/mlagents-learn"})
    with pytest.raises(ValueError, match=r"--mlagents-learn is '/nowhere/mlagents-learn'"):
        mlagents.find_mlagents_learn("/nowhere/mlagents-learn", {}, which)
    with pytest.raises(ValueError, match=r"MLAGENTS_LEARN is '/nowhere/mlagents-learn'.*bench/mlagents\.py"):
        mlagents.find_mlagents_learn(None, {"MLAGENTS_LEARN": "/nowhere/mlagents-learn"}, which)


def test_an_executable_file_is_found_by_its_path(tmp_path: Path) -> None:
    script = tmp_path / "mlagents-learn"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert mlagents.find_mlagents_learn(str(script), {}) == script
    (tmp_path / "plain").write_text("not executable")
    with pytest.raises(ValueError, match="--mlagents-learn"):
        mlagents.find_mlagents_learn(str(tmp_path / "plain"), {})


def test_rayagents_learn_is_the_entry_point_beside_the_interpreter_or_the_module(tmp_path: Path) -> None:
    interpreter = tmp_path / "bin" / "python"
    interpreter.parent.mkdir()
    assert mlagents.rayagents_learn_command(interpreter) == [str(interpreter), "-m", "rayagents.cluster.cli"]
    script = interpreter.parent / "rayagents-learn"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert mlagents.rayagents_learn_command(interpreter) == [str(script)]


# ---- the YAML and the flags ----------------------------------------------------------------------------------------


def test_the_yaml_is_the_cartpole_example_with_max_steps_and_nothing_else_changed() -> None:
    example = mlagents.load_example(mlagents.SCENE)
    config = mlagents.benchmark_config(example)
    assert example["behaviors"]["CartPole"]["max_steps"] != mlagents.MAX_STEPS  # the example is left as it was
    assert config["behaviors"]["CartPole"]["max_steps"] == mlagents.MAX_STEPS
    config["behaviors"]["CartPole"]["max_steps"] = example["behaviors"]["CartPole"]["max_steps"]
    assert config == example
    settings = run_options_from_dict(mlagents.benchmark_config(example)).behaviors["CartPole"]
    assert settings.max_steps == mlagents.MAX_STEPS


def test_a_config_without_behaviors_is_refused() -> None:
    with pytest.raises(ValueError, match="no behaviors"):
        mlagents.benchmark_config({"env_settings": {}})


def test_both_trainers_get_the_flags_of_the_benchmark_and_rayagents_learn_takes_them(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("behaviors:\n  CartPole:\n    trainer_type: ppo\n    max_steps: 40000\n")
    build = tmp_path / "build" / "CartPole"
    arguments = mlagents.trainer_arguments(config, build, "mlagents-0", tmp_path / "results", 43210)
    assert arguments == [
        str(config), "--env", str(build), "--num-envs", "2", "--num-areas", "16", "--no-graphics",
        "--run-id", "mlagents-0", "--results-dir", str(tmp_path / "results"), "--base-port", "43210",
    ]  # fmt: skip
    options = resolve_run_options(arguments)
    assert options.env_settings.env_path == str(build)
    assert (options.env_settings.num_envs, options.env_settings.num_areas) == (2, 16)
    assert options.env_settings.base_port == 43210
    assert options.engine_settings.no_graphics
    assert options.checkpoint_settings.run_id == "mlagents-0"
    assert options.behaviors["CartPole"].max_steps == 40000


def test_the_base_port_and_the_ports_after_it_are_free() -> None:
    base = mlagents.free_base_port(3)
    for port in range(base, base + 3):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", port))


# ---- what a run printed and wrote ----------------------------------------------------------------------------------


def test_steps_come_from_summary_lines_of_either_trainer() -> None:
    mlagents_lines = [
        " Version information:",
        "  ml-agents: 1.1.0,",
        "[INFO] CartPole. Step: 5000. Time Elapsed: 9.068 s. Mean Reward: 34.183. Std of Reward: 22.287. Training.",
        "[INFO] CartPole. Step: 40000. Time Elapsed: 56.955 s. Mean Reward: 251.222. Std of Reward: 75.365. Training.",
        "[INFO] Exported results/t1/CartPole/CartPole-40014.onnx",
    ]
    assert mlagents.summary_steps(mlagents_lines, "CartPole") == 40000
    rayagents_lines = [
        "training starts with 1 of 2 env actors up",
        summary_line("CartPole", 35000, 14.362, 153.2, 16.2, True),
        summary_line("CartPole", 30000, 13.354, None, None, True),
        "Exported results/t2/CartPole.onnx (step 40015)",
    ]
    assert mlagents.summary_steps(rayagents_lines, "CartPole") == 35000
    assert mlagents.summary_steps(rayagents_lines, "Other") is None
    assert mlagents.summary_steps([], "CartPole") is None


def _status(steps: object, torch_version: object = "2.2.1+cu121") -> dict[str, object]:
    return {
        "CartPole": {
            "checkpoints": [{"steps": 19999, "file_path": "results/r/CartPole/CartPole-19999.onnx"}],
            "final_checkpoint": {"steps": steps, "file_path": "results/r/CartPole.onnx", "reward": None},
        },
        "metadata": {"stats_format_version": "0.3.0", "mlagents_version": "1.1.0", "torch_version": torch_version},
    }


def test_the_training_status_gives_the_final_checkpoints_steps_and_the_versions(tmp_path: Path) -> None:
    path = tmp_path / "training_status.json"
    path.write_text(json.dumps(_status(40014)))
    assert mlagents.read_training_status(path, "CartPole") == mlagents.TrainingStatus(40014, "1.1.0", "2.2.1+cu121")
    assert mlagents.read_training_status(path, "Other") == mlagents.TrainingStatus(None, "1.1.0", "2.2.1+cu121")
    path.write_text(json.dumps(_status("many", torch_version=7)))
    assert mlagents.read_training_status(path, "CartPole") == mlagents.TrainingStatus(None, "1.1.0", None)


def test_a_missing_or_broken_training_status_says_nothing(tmp_path: Path) -> None:
    nothing = mlagents.TrainingStatus(None, None, None)
    assert mlagents.read_training_status(tmp_path / "absent.json", "CartPole") == nothing
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    assert mlagents.read_training_status(broken, "CartPole") == nothing
    broken.write_text("[1, 2]")
    assert mlagents.read_training_status(broken, "CartPole") == nothing


# ---- the processes a run left --------------------------------------------------------------------------------------


def test_a_runs_processes_are_its_group_those_naming_its_folder_and_their_descendants() -> None:
    table = {
        100: ProcessInfo(ppid=1, pgid=100, cmdline="rayagents-learn config.yaml"),  # exited; listed for the test
        101: ProcessInfo(ppid=100, pgid=100, cmdline="gcs_server --log_dir=/tmp/ray/session_x_100/logs"),
        102: ProcessInfo(ppid=100, pgid=100, cmdline="raylet"),
        103: ProcessInfo(ppid=102, pgid=103, cmdline="ray::EnvActor"),  # a worker: a session of its own
        104: ProcessInfo(ppid=1, pgid=104, cmdline="python -m rayagents.sims -logFile /tmp/bench-x/results/r/a.log"),
        105: ProcessInfo(ppid=104, pgid=104, cmdline="child of the player"),
        200: ProcessInfo(ppid=1, pgid=200, cmdline="python -m rayagents.sims -logFile /tmp/other/results/a.log"),
        201: ProcessInfo(ppid=200, pgid=200, cmdline="someone else's"),
    }
    assert mlagents.run_processes(table, 100, "/tmp/bench-x") == [100, 101, 102, 103, 104, 105]
    assert mlagents.run_processes(table, 999, "/tmp/bench-y") == []


def test_the_process_table_reads_parent_group_and_command_line(tmp_path: Path) -> None:
    entry = tmp_path / "4242"
    entry.mkdir()
    (entry / "stat").write_text("4242 (odd (name) here) S 17 4200 4200 0 -1 4194560 0 0 0\n")
    (entry / "cmdline").write_bytes(b"python\0-m\0rayagents.sims\0")
    (tmp_path / "self").mkdir()  # not a process id
    assert mlagents.process_table(tmp_path) == {
        4242: ProcessInfo(ppid=17, pgid=4200, cmdline="python -m rayagents.sims")
    }
    assert mlagents.process_table(tmp_path / "absent") == {}


# ---- the rows ------------------------------------------------------------------------------------------------------


def _run(trainer: str, seconds: float, steps: int = 40014, torch_version: str | None = "2.2.1+cu121") -> TimedRun:
    return TimedRun(trainer, seconds, steps, "1.1.0", torch_version)


def test_rows_show_each_trainers_median_and_the_ratio_of_the_medians() -> None:
    ml = [_run("mlagents-learn", 63.0), _run("mlagents-learn", 60.0, 40016), _run("mlagents-learn", 70.0)]
    ra = [_run("rayagents-learn", 25.0, 40015, "2.13.0+cpu"), _run("rayagents-learn", 20.0, 40015, "2.13.0+cpu")]
    rows = mlagents.comparison_rows(ml, ra, "python -m bench.mlagents")
    assert [row.value for row in rows] == [
        "63.0 s (40,014–40,016 steps; median of 3 runs, 60.0–70.0 s)",
        "22.5 s (40,015 steps; median of 2 runs, 20.0–25.0 s)",
        "2.80×",
    ]
    assert rows[0].benchmark.startswith("`mlagents-learn` 1.1.0 (PyTorch 2.2.1+cu121), PPO CartPole to 40,000 steps")
    assert rows[1].benchmark.startswith("`rayagents-learn` ")
    assert "PyTorch 2.13.0+cpu" in rows[1].benchmark
    assert (rows[2].target, rows[2].met) == ("≥ 2.5×", True)
    assert [row.met for row in rows[:2]] == [None, None]
    assert {row.command for row in rows} == {"python -m bench.mlagents"}


def test_a_ratio_below_the_target_is_not_met_and_one_run_shows_no_range() -> None:
    rows = mlagents.comparison_rows(
        [_run("mlagents-learn", 35.0)], [_run("rayagents-learn", 25.9, torch_version=None)], load=(3.04, 5.5)
    )
    assert rows[0].value == "35.0 s (40,014 steps)"
    assert "PyTorch ?" in rows[1].benchmark
    assert (rows[2].value, rows[2].met) == ("1.35× (load average 3.0 before the runs, 5.5 after)", False)


def test_rows_need_runs_of_both_trainers() -> None:
    with pytest.raises(ValueError, match="no runs"):
        mlagents.comparison_rows([_run("mlagents-learn", 35.0)], [])


def test_without_mlagents_learn_the_row_says_not_measured_and_nothing_runs() -> None:
    rows = mlagents.run(None)
    assert len(rows) == 1
    assert rows[0].value == "not measured: mlagents-learn not installed (see bench/mlagents.py)"
    assert (rows[0].target, rows[0].met, rows[0].command) == ("≥ 2.5×", None, "python -m bench.mlagents")
    assert mlagents.run(None, repeats=1)[0].command == "python -m bench.mlagents --repeats 1"


def test_the_command_line_takes_the_path_repeats_and_timeout() -> None:
    parser = mlagents.build_parser()
    options = parser.parse_args([])
    assert (options.mlagents_learn, options.repeats, options.no_readme) == (None, mlagents.DEFAULT_REPEATS, False)
    options = parser.parse_args(["--mlagents-learn", "venv/bin/mlagents-learn", "--repeats", "5", "--no-readme"])
    assert (options.mlagents_learn, options.repeats, options.no_readme) == ("venv/bin/mlagents-learn", 5, True)
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--repeats", bad])


def test_the_readme_has_a_table_that_the_benchmark_can_rewrite(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README.read_text())
    rows = mlagents.comparison_rows([_run("mlagents-learn", 63.0)], [_run("rayagents-learn", 21.0)])
    rewrite_readme(readme, mlagents.SECTION, rows, "a test machine")
    text = readme.read_text()
    section = text.split(f"### {mlagents.SECTION}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    assert "| 3.00× | ≥ 2.5× | yes | `python -m bench.mlagents` |" in section
    assert "Measured on a test machine." in section
    assert text.count("| 3.00× |") == 1  # the other tables are left alone
    assert text.index("### Scaling") < text.index(f"### {mlagents.SECTION}") < text.index("## Layout")
