"""Reward signals and imitation end to end: ``rayagents-learn`` trains sim:CartPole with curiosity, RND, GAIL and
behavioral cloning from a demonstration that ``rayagents-sim record`` wrote; TensorBoard gets ML-Agents' statistic
names; ``--resume`` takes every signal back; a missing demonstration is named before anything is lost.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from learn_runs import CARTPOLE, CARTPOLE_CONFIG, SUMMARY_LINE, run_learn
from rayagents.cluster.tensorboard import read_scalars

pytestmark = pytest.mark.slow

MAX_STEPS = 3000
RESUMED_MAX_STEPS = 5000
"""Two summary periods after the resume: one period of 1,000 steps fills the 512-experience buffer at most once or
twice, and a CI run once wrote no GAIL loss in it (the check is that every signal trains on after the resume)."""
DEMO = "demos/Expert.demo"
"""Relative to the folder ``rayagents-learn`` starts in: the driver makes it absolute for the learner."""
SIGNAL_STATISTICS = (
    "Policy/Extrinsic Reward",
    "Policy/Curiosity Reward",
    "Policy/Rnd Reward",
    "Policy/Gail Reward",
    "Policy/Extrinsic Value Estimate",
    "Policy/Curiosity Value Estimate",
    "Policy/Rnd Value Estimate",
    "Policy/Gail Value Estimate",
    "Losses/Curiosity Forward Loss",
    "Losses/Curiosity Inverse Loss",
    "Losses/RND Loss",
    "Losses/GAIL Loss",
    "Policy/GAIL Policy Estimate",
    "Policy/GAIL Expert Estimate",
    "Losses/Pretraining Loss",
)
"""What ML-Agents 1.1.0 writes for these signals and behavioral cloning."""


def config(max_steps: int, demo_path: str = DEMO) -> dict[str, object]:
    behavior = copy.deepcopy(CARTPOLE_CONFIG["behaviors"][CARTPOLE])
    small = {"hidden_units": 32, "num_layers": 2}
    behavior.update(
        max_steps=max_steps,
        reward_signals={
            "extrinsic": {"gamma": 0.99, "strength": 0.1},
            "curiosity": {"gamma": 0.99, "strength": 0.02, "network_settings": small},
            "rnd": {"gamma": 0.99, "strength": 0.01, "network_settings": small},
            "gail": {"gamma": 0.99, "strength": 0.05, "demo_path": demo_path, "use_actions": True},
        },
        behavioral_cloning={"demo_path": demo_path, "strength": 0.5, "steps": 2000},
    )
    return {"behaviors": {CARTPOLE: behavior}}


def learn_args(path: Path, run_id: str, *more: str) -> list[str]:
    return [str(path), "--env", "sim:CartPole", "--num-envs", "2", "--num-areas", "2", "--seed", "3",
            "--results-dir", "results", "--run-id", run_id, *more]  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``demos/Expert.demo``: 3 episodes of CartPole's heuristic."""
    folder = tmp_path_factory.mktemp("signals")
    recorded = subprocess.run(
        [sys.executable, "-m", "rayagents.sims", "record", "CartPole", "--heuristic", "--episodes", "3",
         "--out", str(folder / DEMO)],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    return folder


def test_every_signal_and_cloning_train_report_and_resume(work: Path) -> None:
    path = work / "signals.yaml"
    path.write_text(yaml.safe_dump(config(MAX_STEPS)))
    code, output = run_learn(learn_args(path, "signals"), work, timeout=300, name="signals")
    assert code == 0, output
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output) if m.group(1) == CARTPOLE]
    assert steps and steps[-1] == MAX_STEPS, output
    run = work / "results" / "signals"
    scalars = read_scalars(run / CARTPOLE)
    missing = [name for name in SIGNAL_STATISTICS if name not in scalars]
    assert not missing, f"{missing} not written; written: {sorted(scalars)}"
    assert scalars["Losses/Pretraining Loss"][0][0] == 1000  # the pretraining's loss is in the first summary
    saved = torch.load(run / CARTPOLE / "checkpoint.pt", weights_only=True)
    for entry in ("Module:Curiosity", "Module:RND-pred", "Module:RND-target", "Module:GAIL", "Optimizer:GAIL"):
        assert entry in saved, entry

    path.write_text(yaml.safe_dump(config(RESUMED_MAX_STEPS)))
    code, output = run_learn(learn_args(path, "signals", "--resume"), work, timeout=300, name="resumed")
    assert code == 0, output
    assert "fresh initialization" not in output and "keeps its" not in output, output  # every module was taken back
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output) if m.group(1) == CARTPOLE]
    assert steps[0] > MAX_STEPS and steps[-1] == RESUMED_MAX_STEPS, output
    resumed = read_scalars(run / CARTPOLE)
    assert max(step for step, _ in resumed["Losses/GAIL Loss"]) > MAX_STEPS  # GAIL trains on after the resume


def test_a_missing_demonstration_is_named_on_the_dry_run_and_stops_the_run(work: Path) -> None:
    path = work / "missing.yaml"
    path.write_text(yaml.safe_dump(config(MAX_STEPS, demo_path="demos/Nowhere.demo")))
    code, output = run_learn(learn_args(path, "missing"), work, timeout=180, name="missing")
    assert code != 0, output
    assert str(work / "demos" / "Nowhere.demo") in output, output  # the warning and the learner's error name it
    assert "behaviors.CartPole.reward_signals.gail.demo_path" in output, output
    assert "Traceback" not in output, output


SAC_MAX_STEPS = 2000


def test_sac_trains_with_every_signal_and_cloning(work: Path) -> None:
    """SAC rewards its replay minibatches with every signal and paces their updates; the statistics are written."""
    settings = config(SAC_MAX_STEPS)["behaviors"][CARTPOLE]  # type: ignore[index]
    settings.update(
        trainer_type="sac",
        hyperparameters={"batch_size": 64, "buffer_size": 5000, "buffer_init_steps": 500, "steps_per_update": 4,
                         "reward_signal_steps_per_update": 8},  # fmt: skip
    )
    path = work / "sac.yaml"
    path.write_text(yaml.safe_dump({"behaviors": {CARTPOLE: settings}}))
    code, output = run_learn(learn_args(path, "sac"), work, timeout=300, name="sac")
    assert code == 0, output
    scalars = read_scalars(work / "results" / "sac" / CARTPOLE)
    expected = [name.replace("Value Estimate", "Value") for name in SIGNAL_STATISTICS]  # SAC's value statistic
    missing = [name for name in expected if name not in scalars]
    assert not missing, f"{missing} not written; written: {sorted(scalars)}"
    assert "Losses/Q1 Loss" in scalars
