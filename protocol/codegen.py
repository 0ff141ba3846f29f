"""Regenerates the Python and gRPC modules from the communicator ``.proto`` files.

Run ``python -m rayagents.protocol.codegen`` after editing a ``.proto`` file (needs the ``dev`` extra,
which brings ``grpcio-tools``). The generated modules are checked in, so users never need protoc;
``tests/unit/test_proto_drift.py`` fails when they no longer match the ``.proto`` files.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PROTO_PACKAGE_DIR = Path(__file__).resolve().parent / "communicator_objects"
"""The folder holding the ``.proto`` files and the generated modules beside them."""

IMPORT_PATH = Path("rayagents/protocol/communicator_objects")
"""Where the ``.proto`` files sit under protoc's import root: their imports name it, and protoc names the generated
modules' imports after it (``rayagents.protocol.communicator_objects``), whatever folder holds this package."""


def proto_files() -> list[Path]:
    """Every communicator ``.proto`` file, sorted by name."""
    return sorted(PROTO_PACKAGE_DIR.glob("*.proto"))


def run_protoc(out_dir: Path, *, python: bool = True, grpc: bool = True, descriptor_set: Path | None = None) -> None:
    """Runs the protoc bundled with grpcio-tools over every ``.proto`` file, writing into ``out_dir``."""
    from grpc_tools import protoc  # imported here: a development-only dependency

    import importlib.resources

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as staging:
        import_root = Path(staging)
        (import_root / IMPORT_PATH).mkdir(parents=True)
        for proto in proto_files():
            shutil.copy2(proto, import_root / IMPORT_PATH / proto.name)
        args = ["grpc_tools.protoc", f"-I{import_root}", f"-I{well_known}"]
        if python:
            args += [f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
        if grpc:
            args.append(f"--grpc_python_out={out_dir}")
        if descriptor_set is not None:
            args += [f"--descriptor_set_out={descriptor_set}", "--include_source_info"]
        args += [str(IMPORT_PATH / p.name) for p in proto_files()]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {PROTO_PACKAGE_DIR}; see the messages above")


def main() -> int:
    """Regenerates the checked-in modules in place."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run_protoc(out)
        generated = out / IMPORT_PATH
        for old in PROTO_PACKAGE_DIR.glob("*_pb2*.py*"):
            old.unlink()
        for new in sorted(generated.iterdir()):
            # protoc writes an empty gRPC module for every file without a service: keep only real ones.
            if new.name.endswith("_pb2_grpc.py") and "def add_" not in new.read_text():
                continue
            shutil.copy2(new, PROTO_PACKAGE_DIR / new.name)
            print(f"wrote {PROTO_PACKAGE_DIR.name}/{new.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
