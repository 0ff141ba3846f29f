"""``rayagents-learn`` end to end: a real local Ray cluster, 2 EnvActors with simulation-host players, the learner.

One short run (``first_run``) is checked file by file against what ML-Agents writes; the others resume it, start
from it, refuse to overwrite it, and are stopped with Ctrl+C or lose a player on the way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from learn_runs import CARTPOLE, SUMMARY_LINE, alive, cartpole_args, run_learn, start_learn, write_cartpole_config

from rayagents.actors.environment import UnityEnvironment
from rayagents.cluster.tensorboard import read_events, read_scalars
from rayagents.configs import load_run_options
from rayagents.learner.checkpoint_format import load_checkpoint
from rayagents.learner.ppo import PPO
from rayagents.learner.trainer import Trainer

pytestmark = pytest.mark.slow

BEHAVIOR = CARTPOLE
MLAGENTS_TAGS = {
    "Environment/Cumulative Reward",
    "Environment/Episode Length",
    "Policy/Entropy",
    "Policy/Learning Rate",
    "Policy/Epsilon",
    "Policy/Beta",
    "Policy/Extrinsic Reward",
    "Policy/Extrinsic Value Estimate",
    "Losses/Policy Loss",
    "Losses/Value Loss",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("learn")


@pytest.fixture(scope="module")
def first_run(workdir: Path) -> tuple[int, str, Path]:
    """The short run every test of this module reads: exit code, output, results folder of the run."""
    config = write_cartpole_config(workdir / "cartpole.yaml")
    code, output = run_learn(cartpole_args(config, workdir / "results", "first"), workdir, name="first")
    return code, output, workdir / "results" / "first"


def test_a_run_trains_to_max_steps_and_writes_the_results_tree(first_run: tuple[int, str, Path]) -> None:
    code, output, run = first_run
    assert code == 0, output
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)]
    assert steps[:3] == [1000, 2000, 3000], output
    assert f"the trained model is {run / 'CartPole.onnx'}" in output
    behavior = run / BEHAVIOR
    kept = sorted(behavior.glob("CartPole-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    assert len(kept) == 2, sorted(p.name for p in behavior.iterdir())
    for pt in kept:
        assert pt.with_suffix(".onnx").is_file()
    assert int(kept[-1].stem.split("-")[1]) >= 3000
    assert (behavior / "checkpoint.pt").is_file()
    assert list(behavior.glob("events.out.tfevents.*"))
    for name in ("Player-0.log", "Player-1.log", "timers.json", "training_status.json"):
        assert (run / "run_logs" / name).is_file(), name
    assert (run / "run_logs" / "Player-0.log").stat().st_size > 0
    configuration = load_run_options(run / "configuration.yaml")
    assert configuration.behaviors[BEHAVIOR].max_steps == 3000
    assert configuration.env_settings.num_envs == 2 and configuration.env_settings.seed == 7
    assert not list(run.rglob("*.tmp")), "a temporary file was left behind"


def test_training_status_lists_the_checkpoints_on_disk_and_the_final_model(first_run: tuple[int, str, Path]) -> None:
    _, _, run = first_run
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status["metadata"]["stats_format_version"] == "0.3.0"
    entry = status[BEHAVIOR]
    listed = [Path(c["file_path"]) for c in entry["checkpoints"]]
    assert sorted(listed) == sorted((run / BEHAVIOR).glob("CartPole-*.onnx"))
    for checkpoint in entry["checkpoints"]:
        assert [Path(p).suffix for p in checkpoint["auxillary_file_paths"]] == [".pt"]
        assert all(Path(p).is_file() for p in checkpoint["auxillary_file_paths"])
    assert Path(entry["final_checkpoint"]["file_path"]) == run / "CartPole.onnx"
    assert entry["final_checkpoint"]["steps"] == entry["checkpoints"][-1]["steps"]
    timers = json.loads((run / "run_logs" / "timers.json").read_text())
    assert "CartPole.Environment.CumulativeReward.mean" in timers["gauges"]


def test_tensorboard_has_the_mlagents_statistics_at_each_summary(first_run: tuple[int, str, Path]) -> None:
    _, _, run = first_run
    scalars = read_scalars(run / BEHAVIOR)
    assert MLAGENTS_TAGS <= set(scalars), sorted(scalars)
    assert [step for step, _ in scalars["Environment/Cumulative Reward"]] == [1000, 2000, 3000]
    tags = {value.tag for event in read_events(run / BEHAVIOR) for value in event.summary.value}
    assert "Environment/Cumulative Reward_hist" in tags and "Hyperparameters" in tags
    learning_rates = [value for _, value in scalars["Policy/Learning Rate"]]
    assert learning_rates == sorted(learning_rates, reverse=True) and learning_rates[0] < 0.001


def test_the_final_onnx_acts_as_the_checkpointed_torch_policy(first_run: tuple[int, str, Path]) -> None:
    _, _, run = first_run
    with UnityEnvironment("sim:CartPole", num_areas=8, seed=3) as env:
        env.reset()
        (behavior,) = env.behavior_specs
        spec = env.behavior_specs[behavior]
        decision_steps, _ = env.get_steps(behavior)
    settings = load_run_options(run / "configuration.yaml").behaviors[BEHAVIOR]
    trainer = Trainer(BEHAVIOR, spec, settings, "cpu")
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    final_pt = status[BEHAVIOR]["final_checkpoint"]["auxillary_file_paths"][0]
    load_checkpoint(final_pt, trainer.modules())
    assert isinstance(trainer.algorithm, PPO)
    obs = np.asarray(decision_steps.obs[0], dtype=np.float32)
    session = onnxruntime.InferenceSession(str(run / "CartPole.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    assert inputs == {"obs_0", "action_masks"}
    masks = np.ones((len(obs), 2), dtype=np.float32)
    (onnx_actions,) = session.run(["deterministic_discrete_actions"], {"obs_0": obs, "action_masks": masks})
    with torch.no_grad():
        sample = trainer.algorithm.actor.act([torch.from_numpy(obs)], torch.ones(len(obs), 2, dtype=torch.bool), deterministic=True)
    np.testing.assert_array_equal(onnx_actions.astype(np.int64), sample.discrete.numpy().astype(np.int64))


def test_a_used_run_id_needs_resume_or_force(first_run: tuple[int, str, Path], workdir: Path) -> None:
    _, _, run = first_run
    config = workdir / "cartpole.yaml"
    started = time.monotonic()
    code, output = run_learn(cartpole_args(config, workdir / "results", "first"), workdir, name="again")
    assert code == 2, output
    assert "--resume" in output and "--force" in output and str(run) in output
    assert time.monotonic() - started < 30, "the refusal must come before the cluster starts"


def test_resume_carries_on_from_the_step_and_checkpoints(first_run: tuple[int, str, Path], workdir: Path) -> None:
    code, _, run = first_run
    assert code == 0
    before = json.loads((run / "run_logs" / "training_status.json").read_text())[BEHAVIOR]
    config = write_cartpole_config(workdir / "cartpole_5000.yaml", max_steps=5000)
    code, output = run_learn(cartpole_args(config, workdir / "results", "first", "--resume"), workdir, name="resume")
    assert code == 0, output
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)]
    assert steps[0] == 4000 and steps[-1] == 5000, output
    after = json.loads((run / "run_logs" / "training_status.json").read_text())[BEHAVIOR]
    assert after["checkpoints"][0]["steps"] > before["checkpoints"][0]["steps"]
    assert after["final_checkpoint"]["steps"] >= 5000
    reward_steps = [s for s, _ in read_scalars(run / BEHAVIOR)["Environment/Cumulative Reward"]]
    assert reward_steps == [1000, 2000, 3000, 4000, 5000], "resume keeps the events of the first part"


def test_initialize_from_starts_at_step_zero_with_the_trained_weights(
    first_run: tuple[int, str, Path], workdir: Path
) -> None:
    code, _, run = first_run
    assert code == 0
    config = write_cartpole_config(workdir / "cartpole_init.yaml", max_steps=1000)
    args = cartpole_args(config, workdir / "results", "second", "--initialize-from", "first")
    code, output = run_learn(args, workdir, name="init")
    assert code == 0, output
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)]
    assert steps[0] == 1000, output
    missing = cartpole_args(config, workdir / "results", "third", "--initialize-from", "nowhere")
    code, output = run_learn(missing, workdir, name="init-missing")
    assert code == 2 and "nowhere" in output, output


def test_ctrl_c_saves_the_model_and_stops_every_player(workdir: Path) -> None:
    config = write_cartpole_config(workdir / "cartpole_long.yaml", max_steps=10_000_000)
    learn = start_learn(cartpole_args(config, workdir / "results", "interrupted"), workdir, name="interrupted")
    learn.wait_for(r"^CartPole\. Step: 2000\.", timeout=120)
    players = learn.player_pids()
    assert len(players) == 2 and all(alive(pid) for pid in players.values())
    started = time.monotonic()
    learn.interrupt()
    code = learn.wait(30)
    stopped_in = time.monotonic() - started
    assert code == 0, learn.output
    assert stopped_in <= 15, f"stopping took {stopped_in:.1f} s"
    run = workdir / "results" / "interrupted"
    assert (run / "CartPole.onnx").is_file()
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status[BEHAVIOR]["final_checkpoint"]["steps"] >= 2000
    assert not [pid for pid in players.values() if alive(pid)], "a player outlived the run"
    assert "--resume --run-id interrupted" in learn.output


def test_a_killed_player_is_restarted_and_training_goes_on(workdir: Path) -> None:
    config = write_cartpole_config(workdir / "cartpole_15000.yaml", max_steps=15000)
    args = cartpole_args(config, workdir / "results", "crash", "--timeout-wait", "10")  # liveness checked every 1 s
    learn = start_learn(args, workdir, name="crash")
    learn.wait_for(r"^CartPole\. Step: 1000\.", timeout=120)
    first_player = learn.player_pids()[0]
    os.kill(first_player, signal.SIGKILL)
    code = learn.wait(180)
    assert code == 0, learn.output
    assert "the player of env actor 0 failed and is restarted" in learn.output
    assert "Player-0.log" in learn.output
    assert learn.summary_steps()[-1] == 15000
    assert (workdir / "results" / "crash" / "CartPole.onnx").is_file()


def test_a_player_failing_past_its_restart_budget_stops_the_run_with_the_model_saved(workdir: Path) -> None:
    config = write_cartpole_config(workdir / "cartpole_long.yaml", max_steps=10_000_000)
    args = cartpole_args(config, workdir / "results", "budget", "--max-lifetime-restarts", "0")
    learn = start_learn(args, workdir, name="budget")
    learn.wait_for(r"^CartPole\. Step: 1000\.", timeout=120)
    players = learn.player_pids()
    os.kill(players[1], signal.SIGKILL)
    code = learn.wait(120)
    assert code == 1, learn.output
    assert "is not restarted again" in learn.output and "--max-lifetime-restarts 0" in learn.output
    assert str(workdir / "results" / "budget" / "run_logs" / "Player-1.log") in learn.output
    assert (workdir / "results" / "budget" / "CartPole.onnx").is_file()
    assert not alive(players[0]), "the other player outlived the run"


def test_inference_plays_a_trained_run_without_writing_checkpoints(
    first_run: tuple[int, str, Path], workdir: Path
) -> None:
    code, _, run = first_run
    assert code == 0
    before = sorted(p.name for p in (run / BEHAVIOR).iterdir() if p.suffix in (".pt", ".onnx"))
    config = write_cartpole_config(workdir / "cartpole_long.yaml", max_steps=10_000_000)
    args = cartpole_args(config, workdir / "results", "first", "--resume", "--inference")
    learn = start_learn(args, workdir, name="inference")
    found = learn.wait_for(r"^CartPole\. Step: \d+\. .* Not Training\.", timeout=120)
    assert found
    learn.interrupt()
    assert learn.wait(30) == 0, learn.output
    after = sorted(p.name for p in (run / BEHAVIOR).iterdir() if p.suffix in (".pt", ".onnx"))
    assert after == before, "inference wrote checkpoints"
    assert "--resume --run-id" not in learn.output


def test_without_env_it_trains_the_editor_that_connects_to_port_5004(workdir: Path) -> None:
    config = write_cartpole_config(workdir / "cartpole_editor.yaml", max_steps=1000)
    args = [str(config), "--results-dir", str(workdir / "results"), "--run-id", "editor", "--seed", "3"]
    learn = start_learn(args, workdir, name="editor")
    learn.wait_for(r"Listening on port 5004\. Start training by pressing the Play button", timeout=120)
    editor = subprocess.run(  # the simulation host in the Editor's place: it connects to 5004 once, as Play does
        [sys.executable, "-m", "rayagents.sims", "--scene", "CartPole", "--mlagents-port", "5004"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert editor.returncode == 0, editor.stdout + editor.stderr
    assert learn.wait(60) == 0, learn.output
    assert "player pid None, port 5004" in learn.output
    assert (workdir / "results" / "editor" / "CartPole.onnx").is_file()


def test_a_lost_env_actor_is_replaced_and_training_goes_on(workdir: Path) -> None:
    config = write_cartpole_config(workdir / "cartpole_20000.yaml", max_steps=20000)
    learn = start_learn(cartpole_args(config, workdir / "results", "lost"), workdir, name="lost")
    learn.wait_for(r"^CartPole\. Step: 1000\.", timeout=120)
    actor, player = learn.env_actor_pids()[1], learn.player_pids()[1]
    os.kill(actor, signal.SIGKILL)  # as when its node goes away
    learn.wait_for(r"env actor 1 was lost and is replaced", timeout=60)
    learn.wait_for(rf"env actor 1 \(pid (?!{actor}\))\d+\)", timeout=60)  # the new one's start line
    code = learn.wait(180)
    assert code == 0, learn.output
    assert learn.env_actor_pids()[1] != actor, "no new env actor 1 started"
    assert learn.summary_steps()[-1] == 20000
    assert not alive(player), "the lost actor's player outlived it"
    assert not [pid for pid in learn.player_pids().values() if alive(pid)]
