"""``--env`` as a build archive: fetched and unpacked once per node, shared by the EnvActors there, run bit set."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from learn_runs import run_learn

from rayagents.actors.builds import is_build_archive, local_build
from rayagents.actors.player import resolve_executable
from rayagents.protocol.exceptions import UnityEnvironmentException


@pytest.fixture(scope="module")
def build_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rayagents-sim build CartPole`` written to a folder."""
    out = tmp_path_factory.mktemp("build") / "CartPole"
    subprocess.run([sys.executable, "-m", "rayagents.sims", "build", "CartPole", str(out)], check=True, timeout=60)
    return out


def zip_without_modes(folder: Path, archive: Path) -> Path:
    """A zip of ``folder`` (inside a top folder) whose entries carry no Unix modes, as many zip tools write."""
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            entry = zipfile.ZipInfo(str(Path(folder.name) / path.relative_to(folder)) + ("/" if path.is_dir() else ""))
            bundle.writestr(entry, b"" if path.is_dir() else path.read_bytes())
    return archive


def test_archive_names_are_recognised() -> None:
    assert is_build_archive("builds/Game.zip") and is_build_archive("s3://bucket/Game.tar.gz")
    assert not is_build_archive("builds/Game") and not is_build_archive("sim:CartPole")


def test_a_zip_uri_is_unpacked_once_with_the_run_bit(build_folder: Path, tmp_path: Path) -> None:
    archive = zip_without_modes(build_folder, tmp_path / "CartPole.zip")
    cache = tmp_path / "cache"
    first = local_build(archive.as_uri(), cache)
    executable = resolve_executable(first)
    assert os.access(executable, os.X_OK)
    marker = Path(first) / "marker"
    marker.write_text("unpacked once")
    assert local_build(str(archive), cache) == first and marker.exists(), "a second fetch must reuse the cache"
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [Path(first).parent.name], "no temporary left"


def test_a_tar_gz_with_an_entry_outside_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as bundle:
        bundle.add(payload, arcname="../outside")
    with pytest.raises(UnityEnvironmentException, match="outside its folder"):
        local_build(str(evil), tmp_path / "cache")
    assert not (tmp_path / "outside").exists()


def test_a_missing_archive_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnityEnvironmentException, match="no build archive there"):
        local_build((tmp_path / "nowhere.zip").as_uri(), tmp_path / "cache")


def _fetch(archive: str, cache: str, results: "multiprocessing.Queue[str]") -> None:
    results.put(local_build(archive, Path(cache)))


def test_actors_on_one_node_share_one_unpacked_build(build_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "CartPole.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(build_folder, arcname="CartPole")
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[str] = context.Queue()
    workers = [context.Process(target=_fetch, args=(archive.as_uri(), str(tmp_path / "cache"), results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    paths = {results.get(timeout=5) for _ in workers}
    assert len(paths) == 1
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 1


@pytest.mark.slow
def test_rayagents_learn_trains_from_a_build_archive_uri(build_folder: Path, tmp_path: Path) -> None:
    archive = Path(shutil.make_archive(str(tmp_path / "CartPole"), "zip", build_folder.parent, build_folder.name))
    config = tmp_path / "cartpole.yaml"
    config.write_text(
        "behaviors:\n  CartPole:\n    trainer_type: ppo\n    hyperparameters: {batch_size: 64, buffer_size: 256}\n"
        "    max_steps: 600\n    summary_freq: 300\n"
    )
    os.environ["RAYAGENTS_BUILD_CACHE"] = str(tmp_path / "node-cache")  # the local cluster's workers inherit it
    try:
        code, output = run_learn(
            [str(config), "--env", archive.as_uri(), "--num-envs", "2", "--results-dir", str(tmp_path / "r"), "--run-id", "zip"],
            tmp_path,
        )
    finally:
        os.environ.pop("RAYAGENTS_BUILD_CACHE")
    assert code == 0, output
    unpacked = [p for p in (tmp_path / "node-cache").iterdir() if p.is_dir()]
    assert len(unpacked) == 1 and list(unpacked[0].rglob("CartPole.x86_64")), "one unpacked build, shared by both"
    assert (tmp_path / "r" / "zip" / "CartPole.onnx").is_file()
