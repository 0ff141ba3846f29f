"""``rayagents-learn`` when something goes wrong that a user cannot fix by restarting: a player that hangs, a learner
lost more often than ``--learner-max-restarts`` allows, a results folder that the learner's node does not see.

Each test runs the real command line in a process of its own against a real Ray cluster, makes the fault when the
run's own output says it has reached a step (never after a fixed time), and checks what a user sees: the console,
the exit code, the results folder, and that no player, EnvActor or learner process is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
import pytest
import torch
from learn_runs import CARTPOLE, SUMMARY_LINE, LearnProcess, alive, cartpole_args, start_learn, write_cartpole_config
from ray.cluster_utils import Cluster

from rayagents.cluster.tensorboard import read_scalars

pytestmark = pytest.mark.slow

NEVER = 10_000_000
"""A max_steps no test run reaches: each run is stopped by the test once it has shown what it should."""


def test_a_hung_player_is_restarted_and_training_goes_on(tmp_path: Path) -> None:
    """A player that stops answering (SIGSTOP: alive, but silent) is restarted after ``--timeout-wait`` seconds."""
    config = write_cartpole_config(tmp_path / "cartpole.yaml", max_steps=NEVER)
    learn = start_learn(cartpole_args(config, tmp_path / "results", "hung", "--timeout-wait", "5"), tmp_path)
    try:
        learn.wait_for_step(1000, timeout=120)
        hung = learn.player_pids()[0]
        os.kill(hung, signal.SIGSTOP)
        failed = learn.wait_for(r"warning: the player of env actor 0 failed and is restarted: (.*)$", timeout=60)
        assert "took too long to respond" in failed.group(1), failed.group(0)
        assert "Player-0.log" in failed.group(1), failed.group(0)
        again = learn.wait_for(r"env actor 0: its player runs again, player pid (\d+)", timeout=60)
        restarted = int(again.group(1))
        assert restarted != hung and alive(restarted)
        assert not alive(hung), "the hung player was not stopped when its EnvActor gave up on it"
        # Its line comes once a collect call played the new player; training goes on after it.
        before = [int(m.group(2)) for m in SUMMARY_LINE.finditer(learn.output[: again.end()])]
        learn.wait_for_step(max(before, default=0) + 1000, timeout=60)
        assert learn.stop() == 0, learn.output
    finally:
        learn.kill_if_running()
    restarts = read_scalars(tmp_path / "results" / "hung" / CARTPOLE)["Cluster/Player Restarts"]
    assert restarts[-1][1] == 1.0, restarts
    assert not learn.left_behind(), learn.output


def assert_loads(pt: Path) -> None:
    """A ``.pt`` checkpoint that loads as ``--resume`` loads it, and (unless it is ``checkpoint.pt``) its ``.onnx``."""
    state = torch.load(pt, weights_only=True)
    assert "global_step" in state, pt
    if pt.name != "checkpoint.pt":
        onnxruntime.InferenceSession(str(pt.with_suffix(".onnx")), providers=["CPUExecutionProvider"])


def test_a_learner_lost_past_its_restart_budget_stops_the_run_cleanly(tmp_path: Path) -> None:
    """``--learner-max-restarts 1``: the first lost learner is restarted, the second loss ends the run with exit code
    1 and a message naming the flag; the final save is attempted, the checkpoints written so far load (what
    ``--resume`` reads first), the run logs are written, and no process is left behind."""
    config = write_cartpole_config(tmp_path / "cartpole.yaml", max_steps=NEVER)
    args = cartpole_args(config, tmp_path / "results", "learner", "--learner-max-restarts", "1")
    learn = start_learn(args, tmp_path)
    try:
        learn.wait_for_step(2000, timeout=120)
        (first,) = learn.learner_pids()
        os.kill(first, signal.SIGKILL)
        restarted = learn.wait_for(r"learner restarted in [\d.]+ s \(CartPole at step (\d+)\)", timeout=120)
        second = learn.learner_pids()[-1]
        assert second != first and alive(second), learn.output
        # The restarted learner trains: a summary after the restart, then it is lost too.
        learn.wait_for_step(int(restarted.group(1)) + 1000, timeout=120)
        os.kill(second, signal.SIGKILL)
        code = learn.wait(120)
    finally:
        learn.kill_if_running()
    assert code == 1, learn.output
    assert "error: the learner was lost 2 times (--learner-max-restarts 1)" in learn.output, learn.output
    run = tmp_path / "results" / "learner"
    # Either the final save worked, or the console points at the checkpoints that --resume reads.
    assert (
        f"What was learned up to the failure is saved under {run}" in learn.output
        or "what was learned up to the last checkpoints (CartPole at step" in learn.output
    ), learn.output
    # The final save was attempted: either it was exported, or the console says why it could not be.
    assert "Exported " in learn.output or "error: the final model could not be saved" in learn.output, learn.output
    written = sorted((run / CARTPOLE).glob("*.pt"))
    assert run / CARTPOLE / "checkpoint.pt" in written, written
    for pt in written:
        assert_loads(pt)
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status[CARTPOLE]["checkpoints"], status
    assert (run / "run_logs" / "timers.json").is_file()
    assert not learn.left_behind(), learn.output


class NotProvoked(RuntimeError):
    """The test could not set up the situation it checks (not the failure it expects)."""


def listed_files(status_path: Path) -> list[Path]:
    """The ``.onnx`` and ``.pt`` files that ``training_status.json`` lists as CartPole's checkpoints."""
    entries = json.loads(status_path.read_text()).get(CARTPOLE, {}).get("checkpoints", [])
    return [Path(p) for entry in entries for p in (entry["file_path"], *entry["auxillary_file_paths"])]


def test_training_status_lists_only_checkpoints_that_exist_after_the_learner_is_lost(tmp_path: Path) -> None:
    """A run that ends because its learner was lost leaves a ``training_status.json`` whose checkpoints exist.

    The driver learns of checkpoints only from its progress polls (once a second), so the test makes the case where
    the learner rotated a checkpoint away since the last poll certain rather than likely: right after the driver
    wrote ``training_status.json`` (a poll was just answered: none is outstanding) it pauses the driver (SIGSTOP),
    waits for the learner to write a checkpoint from the EnvActors' calls in flight and delete the listed one
    (``keep_checkpoints: 1``), kills the learner and lets the driver go on (``--learner-max-restarts 0``)."""
    config = write_cartpole_config(
        tmp_path / "cartpole.yaml", max_steps=NEVER, checkpoint_interval=200, keep_checkpoints=1
    )
    args = cartpole_args(config, tmp_path / "results", "stale", "--num-areas", "16", "--learner-max-restarts", "0")
    learn = start_learn(args, tmp_path)
    run = tmp_path / "results" / "stale"
    status_path = run / "run_logs" / "training_status.json"
    rotated: list[Path] = []
    try:
        learn.wait_for_step(1000, timeout=120)
        # The driver prints a poll's summaries before it saves the poll's checkpoints: a fleet fast enough to reach
        # step 1000 by the first poll that lists one leaves the file unwritten for a moment after the line.
        deadline = time.monotonic() + 30
        while not status_path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        (learner,) = learn.learner_pids()
        for _ in range(20):
            written_at = status_path.stat().st_mtime_ns
            deadline = time.monotonic() + 10
            while status_path.stat().st_mtime_ns == written_at and time.monotonic() < deadline:
                time.sleep(0.002)
            os.kill(learn.process.pid, signal.SIGSTOP)
            try:
                listed = listed_files(status_path)
                deadline = time.monotonic() + 3
                while not rotated and time.monotonic() < deadline:
                    rotated = [path for path in listed if not path.exists()]
                    time.sleep(0.002)
                if rotated:
                    os.kill(learner, signal.SIGKILL)
                    break
            finally:
                os.kill(learn.process.pid, signal.SIGCONT)
        if not rotated:
            raise NotProvoked(f"the learner rotated no listed checkpoint while the driver was paused:\n{learn.output}")
        code = learn.wait(120)
    finally:
        learn.kill_if_running()
    assert code == 1 and "--learner-max-restarts 0" in learn.output, learn.output
    missing = [path for path in listed_files(status_path) if not path.exists()]
    assert not missing, f"training_status.json lists checkpoints that do not exist: {missing}"
    assert not learn.left_behind(), learn.output


def _mount_namespace_prefix() -> list[str]:
    """The ``unshare`` command line that runs a command in a mount namespace of its own (a user namespace too when
    this process is not root); skips the test where this machine does not allow it."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to give one Ray node a folder the others do not see")
    prefix = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs probe /mnt || mount -t tmpfs probe /tmp"],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"this machine does not allow a private mount namespace ({probe.stderr.strip()})")
    return prefix


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it, parents first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


class HiddenResultsCluster:
    """A Ray cluster of two nodes on this machine: the head (the driver's node, CPUs for the players), and a learner
    node (a GPU in Ray's books) started by ``ray start`` in a mount namespace where ``hidden`` is an empty tmpfs, as
    when the driver's folder is a local disk of another machine."""

    def __init__(self, hidden: Path, log: Path) -> None:
        prefix = _mount_namespace_prefix()
        self.cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
        ray_command = str(Path(sys.executable).with_name("ray"))
        mount_then_run = 'mount -t tmpfs rayagents-hidden "$1" && shift && exec "$@"'
        with open(log, "wb") as output:
            self.node = subprocess.Popen(
                [*prefix, "sh", "-c", mount_then_run, "sh", str(hidden), ray_command, "start", "--address",
                 self.cluster.address, "--num-cpus", "1", "--num-gpus", "1", "--block"],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(self.cluster.global_state._live_node_ids()) < 2:
            if time.monotonic() > deadline or self.node.poll() is not None:
                self.shutdown()
                raise AssertionError(f"the learner node did not join:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)

    @property
    def address(self) -> str:
        """The head's address (``--address``)."""
        return self.cluster.address

    def shutdown(self) -> None:
        """Stops the learner node (every process it started), then the rest of the cluster."""
        pids = _descendants(self.node.pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.node.wait(40)
        except subprocess.TimeoutExpired:
            pass
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.node.poll() is None:
            self.node.wait(10)
        self.cluster.shutdown()


@dataclass(frozen=True)
class RefusedRun:
    """A run whose results folder its learner's node could not see, once it ended."""

    code: int
    """Its exit code."""
    learn: LearnProcess
    """The run (its output, the processes it started)."""
    run: Path
    """The run's results folder, on the driver's node."""


@pytest.fixture(scope="module")
def refused_run(tmp_path_factory: pytest.TempPathFactory) -> RefusedRun:
    """``rayagents-learn`` with a plain ``--results-dir`` on a cluster whose learner node does not see it. The tests
    only read what it left."""
    work = tmp_path_factory.mktemp("hidden")
    (work / "results").mkdir()
    cluster = HiddenResultsCluster(work / "results", work / "learner-node.log")
    try:
        config = write_cartpole_config(work / "cartpole.yaml", max_steps=1000)
        args = cartpole_args(config, work / "results", "hidden", "--address", cluster.address,
                             "--learner-num-gpus", "1", "--learner-device", "cpu")  # fmt: skip
        learn = start_learn(args, work)
        try:
            code = learn.wait(120)
        finally:
            learn.kill_if_running()
    finally:
        cluster.shutdown()
    return RefusedRun(code, learn, work / "results" / "hidden")


def test_a_results_folder_the_learners_node_cannot_see_is_refused(refused_run: RefusedRun) -> None:
    """The run stops before any player starts, with a message that names the folder, the learner's node and what to
    give instead; nothing is trained or written, and no process is left behind."""
    output = refused_run.learn.output
    assert refused_run.code != 0, output
    assert f"the results folder {refused_run.run} does not exist on the learner's node" in output, output
    assert "Give --results-dir a folder on storage that every node mounts at the same path, or a URI" in output
    assert not refused_run.learn.player_pids(), "a player started though the learner cannot write the results"
    assert not refused_run.learn.summary_steps(), output
    assert not list(refused_run.run.rglob("*.pt")) and not list(refused_run.run.rglob("*.onnx"))
    assert not refused_run.learn.left_behind(), output


def test_the_refusal_of_an_unseen_results_folder_reads_as_a_refusal(refused_run: RefusedRun) -> None:
    """The refusal reads as the README promises ("the run refuses to start"): exit code 2, as for every other refused
    configuration, and the first ``error:`` line is the learner's own message rather than Ray's traceback."""
    output = refused_run.learn.output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors and errors[0].startswith(f"error: the results folder {refused_run.run} does not exist"), errors
    assert "What was learned" not in output, output
    assert refused_run.code == 2, output
