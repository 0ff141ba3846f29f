"""The one ``rayagents`` distribution built from the repository's top-level folders: a wheel holds every module,
the ``.proto``/``.pyi`` files and the example configs, and both the wheel and the editable install import them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
"""Top-level package → its folder at the repository root (``rayagents.cluster`` → ``cluster``)."""

NOT_PACKAGED = {"tests", "bench", "deploy", "build", "dist", "results", "builds"}
"""Root folders that are not part of the distribution."""

COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "results", "builds")


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
names = set(sys.argv[1:])
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    names.update(m.name for m in pkgutil.walk_packages(module.__path__, package + ".") if not m.name.endswith("__main__"))
for name in sorted(names):
    importlib.import_module(name)
print(len(names), importlib.import_module("rayagents.cluster").__file__)
"""
"""Imports every module of the packages named as arguments; prints how many and where ``rayagents.cluster`` is."""


def _module_count(files: set[str]) -> int:
    """How many modules and packages the ``.py`` files of the wheel make (``__main__`` modules left out)."""
    return sum(1 for name in files if name.endswith(".py") and not name.endswith("__main__.py"))


def _expected_files() -> set[str]:
    """Every file the wheel must hold, as its path inside the wheel, read from the source tree."""
    expected: set[str] = set()
    for package, folder in PACKAGE_DIRS.items():
        base = ROOT / folder
        prefix = package.replace(".", "/")
        nested = [other for other in PACKAGE_DIRS.values() if other != folder and other.startswith(f"{folder}/")]
        for path in base.rglob("*"):
            relative = path.relative_to(base)
            if "__pycache__" in relative.parts or path.is_dir() or any(path.is_relative_to(ROOT / n) for n in nested):
                continue
            if path.suffix in {".py", ".proto", ".pyi", ".yaml"}:
                expected.add(f"{prefix}/{relative.as_posix()}")
    return expected


def test_every_package_folder_at_the_root_is_mapped() -> None:
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_PACKAGED
    assert folders == set(PACKAGE_DIRS.values()), "a top-level package folder is missing from package-dir"
    assert not (ROOT / "src").exists()
    assert sorted(p.name for p in (ROOT / "rayagents").iterdir() if p.name != "__pycache__") == ["__init__.py"]


@pytest.mark.slow
def test_the_wheel_holds_and_imports_every_module(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORE)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, source],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("rayagents-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if not name.startswith("rayagents-")}
    expected = _expected_files()
    assert {"rayagents/__init__.py", "rayagents/cluster/cli.py", "rayagents/configs/ppo/CartPole.yaml"} <= expected
    assert any(name.endswith(".proto") for name in expected) and any(name.endswith(".pyi") for name in expected)
    assert packaged == expected, f"missing: {sorted(expected - packaged)}; extra: {sorted(packaged - expected)}"

    # Installed on its own (the repository's folders out of sys.path), the wheel imports every module.
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel], check=True
    )
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE, *PACKAGE_DIRS],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    imported, cluster_file = result.stdout.split()
    assert Path(cluster_file).is_relative_to(site), "the repository's folders, not the wheel, were imported"
    assert int(imported) == _module_count(expected)


def test_the_installed_package_imports_every_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE, *PACKAGE_DIRS], cwd=ROOT / "tests", capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    imported, _ = result.stdout.split()
    assert int(imported) == _module_count(_expected_files())
