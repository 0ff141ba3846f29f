"""``rayagents-learn`` end to end: a real local Ray cluster, 2 EnvActors with simulation-host players, the learner.

One short run (``first_run``, made once per module and never changed) is checked file by file against what ML-Agents
writes; the tests that resume it, start from it, refuse to overwrite it or play it work on a copy of its results
(``copy_of_first_run``), so that no test sees what another did and any order gives the same results. The others run
on their own, are stopped with Ctrl+C or lose a player on the way: each fault is made when the run's output says it
reached a step, and a run that must outlast a fault is given a max_steps it never reaches and stopped by the test.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from learn_runs import (
    CARTPOLE,
    SUMMARY_LINE,
    alive,
    cartpole_args,
    run_learn,
    start_learn,
    write_cartpole_config,
)

from rayagents.actors.environment import DEFAULT_EDITOR_PORT, UnityEnvironment
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


NEVER = 10_000_000
"""A max_steps no run here reaches: a run that must outlast a fault is stopped by its test."""


@dataclass(frozen=True)
class FirstRun:
    """The module's short run, once it ended. Tests read it; a test that runs ``rayagents-learn`` against it (which
    may write into it) takes :meth:`copy_to` first."""

    code: int
    """Its exit code."""
    output: str
    """What it printed."""
    results: Path
    """Its ``--results-dir``."""
    config: Path
    """Its trainer config."""
    run_id: str = "first"
    """Its ``--run-id``."""

    @property
    def run(self) -> Path:
        """Its results folder (``<results>/<run-id>``)."""
        return self.results / self.run_id

    def copy_to(self, folder: Path) -> Path:
        """Copies the run's results into ``folder/results`` and returns that ``--results-dir``. The copy's files
        name their own paths in the copy's ``training_status.json``."""
        results = folder / "results"
        shutil.copytree(self.run, results / self.run_id)
        status = results / self.run_id / "run_logs" / "training_status.json"
        status.write_text(status.read_text().replace(str(self.results), str(results)))
        return results


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """The short run (3,000 steps) that the tests of this module read but never change."""
    work = tmp_path_factory.mktemp("first")
    config = write_cartpole_config(work / "cartpole.yaml")
    code, output = run_learn(cartpole_args(config, work / "results", "first"), work, name="first")
    return FirstRun(code, output, work / "results", config)


def test_a_run_trains_to_max_steps_and_writes_the_results_tree(first_run: FirstRun) -> None:
    """A run reaches max_steps and writes ML-Agents' results tree: checkpoints, the final model, run logs."""
    output, run = first_run.output, first_run.run
    assert first_run.code == 0, output
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


def test_training_status_lists_the_checkpoints_on_disk_and_the_final_model(first_run: FirstRun) -> None:
    """``training_status.json`` names the checkpoints that are on disk and the final ``.onnx``."""
    run = first_run.run
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


def test_tensorboard_has_the_mlagents_statistics_at_each_summary(first_run: FirstRun) -> None:
    """TensorBoard holds ML-Agents' statistics at every summary step."""
    run = first_run.run
    scalars = read_scalars(run / BEHAVIOR)
    assert MLAGENTS_TAGS <= set(scalars), sorted(scalars)
    assert [step for step, _ in scalars["Environment/Cumulative Reward"]] == [1000, 2000, 3000]
    tags = {value.tag for event in read_events(run / BEHAVIOR) for value in event.summary.value}
    assert "Environment/Cumulative Reward_hist" in tags and "Hyperparameters" in tags
    learning_rates = [value for _, value in scalars["Policy/Learning Rate"]]
    assert learning_rates == sorted(learning_rates, reverse=True) and learning_rates[0] < 0.001


def test_the_final_onnx_acts_as_the_checkpointed_torch_policy(first_run: FirstRun) -> None:
    """The final ``.onnx`` chooses the same deterministic actions as the final checkpoint's torch policy."""
    run = first_run.run
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


def test_a_used_run_id_needs_resume_or_force(first_run: FirstRun, tmp_path: Path) -> None:
    """A used run id without --resume or --force is refused (exit 2) before anything starts or is written."""
    results = first_run.copy_to(tmp_path)
    before = sorted(str(p.relative_to(results)) for p in results.rglob("*"))
    code, output = run_learn(cartpole_args(first_run.config, results, "first"), tmp_path, name="again")
    assert code == 2, output
    assert "--resume" in output and "--force" in output and str(results / "first") in output
    # Refused before anything starts: no Ray cluster, no learner, no player; the run's files as they were.
    assert "learner (pid" not in output and "env actor" not in output, output
    assert sorted(str(p.relative_to(results)) for p in results.rglob("*")) == before


def test_resume_carries_on_from_the_step_and_checkpoints(first_run: FirstRun, tmp_path: Path) -> None:
    """--resume carries on from the saved step, keeps rotating the checkpoints and keeps the earlier events."""
    assert first_run.code == 0, first_run.output
    results = first_run.copy_to(tmp_path)
    run = results / "first"
    before = json.loads((run / "run_logs" / "training_status.json").read_text())[BEHAVIOR]
    config = write_cartpole_config(tmp_path / "cartpole_5000.yaml", max_steps=5000)
    code, output = run_learn(cartpole_args(config, results, "first", "--resume"), tmp_path, name="resume")
    assert code == 0, output
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)]
    assert steps[0] == 4000 and steps[-1] == 5000, output
    after = json.loads((run / "run_logs" / "training_status.json").read_text())[BEHAVIOR]
    assert after["checkpoints"][0]["steps"] > before["checkpoints"][0]["steps"]
    assert after["final_checkpoint"]["steps"] >= 5000
    assert all(Path(c["file_path"]).is_relative_to(run) for c in after["checkpoints"]), after
    reward_steps = [s for s, _ in read_scalars(run / BEHAVIOR)["Environment/Cumulative Reward"]]
    assert reward_steps == [1000, 2000, 3000, 4000, 5000], "resume keeps the events of the first part"


def test_initialize_from_starts_at_step_zero_with_the_trained_weights(first_run: FirstRun, tmp_path: Path) -> None:
    """--initialize-from starts a new run at step 0; a run id that does not exist is refused (exit 2)."""
    assert first_run.code == 0, first_run.output
    results = first_run.copy_to(tmp_path)
    config = write_cartpole_config(tmp_path / "cartpole_init.yaml", max_steps=1000)
    args = cartpole_args(config, results, "second", "--initialize-from", "first")
    code, output = run_learn(args, tmp_path, name="init")
    assert code == 0, output
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)]
    assert steps[0] == 1000, output
    missing = cartpole_args(config, results, "third", "--initialize-from", "nowhere")
    code, output = run_learn(missing, tmp_path, name="init-missing")
    assert code == 2 and "nowhere" in output, output


def test_ctrl_c_saves_the_model_and_stops_every_player(tmp_path: Path) -> None:
    """Ctrl+C saves the model, stops every player and exits 0 within seconds, telling how to resume; an impatient
    second Ctrl+C while it saves changes nothing."""
    config = write_cartpole_config(tmp_path / "cartpole_long.yaml", max_steps=NEVER)
    learn = start_learn(cartpole_args(config, tmp_path / "results", "interrupted"), tmp_path, name="interrupted")
    try:
        learn.wait_for_step(2000, timeout=120)
        players = learn.player_pids()
        assert len(players) == 2 and all(alive(pid) for pid in players.values())
        started = time.monotonic()
        learn.interrupt()
        learn.wait_for("Training was interrupted", timeout=30)
        if learn.process.poll() is None:
            learn.interrupt()  # the second Ctrl+C, while it saves
        code = learn.wait(60)
        stopped_in = time.monotonic() - started
    finally:
        learn.kill_if_running()
    assert code == 0, learn.output
    assert "Traceback" not in learn.output and "KeyboardInterrupt" not in learn.output, learn.output
    assert stopped_in <= 30, f"stopping took {stopped_in:.1f} s"  # the README's "exits within seconds"
    run = tmp_path / "results" / "interrupted"
    assert (run / "CartPole.onnx").is_file()
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status[BEHAVIOR]["final_checkpoint"]["steps"] >= 2000
    assert not learn.left_behind(), "a player, EnvActor or learner outlived the run"
    assert "--resume --run-id interrupted" in learn.output


def test_a_killed_player_is_restarted_and_training_goes_on(tmp_path: Path) -> None:
    """A player killed with SIGKILL is restarted by its EnvActor, the console names its log, training goes on."""
    config = write_cartpole_config(tmp_path / "cartpole_long.yaml", max_steps=NEVER)
    args = cartpole_args(config, tmp_path / "results", "crash", "--timeout-wait", "10")  # liveness checked every 1 s
    learn = start_learn(args, tmp_path, name="crash")
    try:
        learn.wait_for_step(1000, timeout=120)
        first_player = learn.player_pids()[0]
        os.kill(first_player, signal.SIGKILL)
        again = learn.wait_for(r"env actor 0: its player runs again, player pid (\d+)", timeout=60)
        assert int(again.group(1)) != first_player
        before = [int(m.group(2)) for m in SUMMARY_LINE.finditer(learn.output[: again.end()])]
        learn.wait_for_step(max(before, default=0) + 1000, timeout=60)
        code = learn.stop()
    finally:
        learn.kill_if_running()
    assert code == 0, learn.output
    assert "the player of env actor 0 failed and is restarted" in learn.output
    assert "Player-0.log" in learn.output
    assert (tmp_path / "results" / "crash" / "CartPole.onnx").is_file()
    assert not learn.left_behind(), learn.output


def test_a_player_failing_past_its_restart_budget_stops_the_run_with_the_model_saved(tmp_path: Path) -> None:
    """A player failing past --max-lifetime-restarts stops the run (exit 1) with the model saved and its log named."""
    config = write_cartpole_config(tmp_path / "cartpole_long.yaml", max_steps=NEVER)
    args = cartpole_args(config, tmp_path / "results", "budget", "--max-lifetime-restarts", "0")
    learn = start_learn(args, tmp_path, name="budget")
    try:
        learn.wait_for_step(1000, timeout=120)
        players = learn.player_pids()
        os.kill(players[1], signal.SIGKILL)
        code = learn.wait(120)
    finally:
        learn.kill_if_running()
    assert code == 1, learn.output
    assert "is not restarted again" in learn.output and "--max-lifetime-restarts 0" in learn.output
    assert str(tmp_path / "results" / "budget" / "run_logs" / "Player-1.log") in learn.output
    assert (tmp_path / "results" / "budget" / "CartPole.onnx").is_file()
    assert not alive(players[0]), "the other player outlived the run"
    assert not learn.left_behind(), learn.output


def test_inference_plays_a_trained_run_without_writing_checkpoints(first_run: FirstRun, tmp_path: Path) -> None:
    """--inference plays a trained run ("Not Training") and writes no checkpoint."""
    assert first_run.code == 0, first_run.output
    results = first_run.copy_to(tmp_path)
    run = results / "first"
    before = sorted(p.name for p in (run / BEHAVIOR).iterdir() if p.suffix in (".pt", ".onnx"))
    config = write_cartpole_config(tmp_path / "cartpole_long.yaml", max_steps=NEVER)
    args = cartpole_args(config, results, "first", "--resume", "--inference")
    learn = start_learn(args, tmp_path, name="inference")
    try:
        learn.wait_for(r"^CartPole\. Step: \d+\. .* Not Training\.", timeout=120)
        code = learn.stop(30)
    finally:
        learn.kill_if_running()
    assert code == 0, learn.output
    after = sorted(p.name for p in (run / BEHAVIOR).iterdir() if p.suffix in (".pt", ".onnx"))
    assert after == before, "inference wrote checkpoints"
    assert "--resume --run-id" not in learn.output


@pytest.fixture()
def editor_port() -> Iterator[int]:
    """The Editor's port (5004), held for this test alone.

    ``rayagents-learn`` without ``--env`` always listens on the Editor's port, as mlagents-learn does
    (``--base-port`` is the players' first port and is not used for the Editor), so the test cannot take a free
    port. Test sessions on one machine take turns through a lock file; a port held by another program skips the
    test, naming the port."""
    lock_path = Path(tempfile.gettempdir()) / f"rayagents-test-editor-port-{DEFAULT_EDITOR_PORT}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", DEFAULT_EDITOR_PORT))
            except OSError as error:
                pytest.skip(f"the Editor's port {DEFAULT_EDITOR_PORT} is held by another program ({error})")
        yield DEFAULT_EDITOR_PORT


def test_without_env_it_trains_the_editor_that_connects_to_its_port(editor_port: int, tmp_path: Path) -> None:
    """Without --env the run waits for the Editor on its port, then trains the player that connects there."""
    config = write_cartpole_config(tmp_path / "cartpole_editor.yaml", max_steps=1000)
    args = [str(config), "--results-dir", str(tmp_path / "results"), "--run-id", "editor", "--seed", "3"]
    learn = start_learn(args, tmp_path, name="editor")
    try:
        learn.wait_for(rf"Listening on port {editor_port}\. Start training by pressing the Play button", timeout=120)
        editor = subprocess.run(  # the simulation host in the Editor's place: it connects once, as Play does
            [sys.executable, "-m", "rayagents.sims", "--scene", "CartPole", "--mlagents-port", str(editor_port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert editor.returncode == 0, editor.stdout + editor.stderr
        code = learn.wait(60)
    finally:
        learn.kill_if_running()
    assert code == 0, learn.output
    assert f"player pid None, port {editor_port}" in learn.output
    assert (tmp_path / "results" / "editor" / "CartPole.onnx").is_file()
    assert not learn.left_behind(), learn.output


def test_a_lost_env_actor_is_replaced_and_training_goes_on(tmp_path: Path) -> None:
    """An EnvActor killed with SIGKILL (as when its node goes) is replaced; its player goes too; training goes on."""
    config = write_cartpole_config(tmp_path / "cartpole_long.yaml", max_steps=NEVER)
    learn = start_learn(cartpole_args(config, tmp_path / "results", "lost"), tmp_path, name="lost")
    try:
        learn.wait_for_step(1000, timeout=120)
        actor, player = learn.env_actor_pids()[1], learn.player_pids()[1]
        os.kill(actor, signal.SIGKILL)  # as when its node goes away
        learn.wait_for(r"env actor 1 was lost and is replaced", timeout=60)
        started = learn.wait_for(rf"env actor 1 \(pid (?!{actor}\))\d+\)", timeout=60)  # the new one's start line
        before = [int(m.group(2)) for m in SUMMARY_LINE.finditer(learn.output[: started.end()])]
        learn.wait_for_step(max(before, default=0) + 1000, timeout=60)
        code = learn.stop()
    finally:
        learn.kill_if_running()
    assert code == 0, learn.output
    assert learn.env_actor_pids()[1] != actor, "no new env actor 1 started"
    assert not alive(player), "the lost actor's player outlived it"
    assert not learn.left_behind(), learn.output
