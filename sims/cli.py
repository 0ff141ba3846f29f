"""``rayagents-sim``: a player executable that runs a scene, and the builds and listing of scenes.

Player: ``rayagents-sim --scene NAME [--mlagents-port P] [-logFile PATH|-] [-batchmode] [-nographics] ...``.
It takes a Unity player's arguments and ignores the Unity arguments it does not know. Without a port it logs
that there is no trainer and exits 0 (a Unity player would run inference).

Others: ``rayagents-sim build NAME DIR`` writes a build folder; ``rayagents-sim list`` prints the scenes and
names each one's example trainer config; ``rayagents-sim record SCENE --episodes N (--model M.onnx | --heuristic)
[--out DIR/NAME.demo]`` plays a scene in this process, reports the mean episode reward and writes a ``.demo``
(see ``record.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Callable, Sequence

from rayagents.sims.academy import EXIT_FAILURE, EXIT_OK, Academy
from rayagents.sims.build import write_build
from rayagents.sims.client import UnityClient
from rayagents.sims.scenes import UnknownSceneError, example_config_name, get_scene, scene_names

logger = logging.getLogger("rayagents.sims")

EXIT_USAGE = 2
"""Bad command line (an unknown scene, a missing argument)."""

_UNITY_FLAGS = {"-logfile": "-logFile", "-batchmode": "-batchmode", "-nographics": "-nographics"}
"""Unity's own flags, matched case-insensitively as a player does."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rayagents-sim`` and ``python -m rayagents.sims``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "build":
        return _build(args[1:])
    if args and args[0] == "record":
        from rayagents.sims.record import main as record_main  # onnxruntime and the writer load only for it

        return record_main(args[1:])
    if args and args[0] == "list":
        for name in scene_names():
            example = example_config_name(name)
            suffix = f" (example config: {example})" if example else ""
            print(f"{name}: {get_scene(name).description}{suffix}")
        return EXIT_OK
    return _play(args)


def _build(argv: Sequence[str]) -> int:
    """``rayagents-sim build NAME DIR``."""
    parser = argparse.ArgumentParser(
        prog="rayagents-sim build", description="Write a scene's build folder (DIR/NAME.x86_64 and DIR/NAME_Data/)."
    )
    parser.add_argument("scene", help=f"the scene ({', '.join(scene_names())})")
    parser.add_argument("out_dir", type=Path, help="the folder to write the build into")
    options = parser.parse_args(argv)
    try:
        executable = write_build(options.scene, options.out_dir)
    except UnknownSceneError as error:
        print(f"rayagents-sim build: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(executable)
    return EXIT_OK


def player_parser() -> argparse.ArgumentParser:
    """The parser of the player's arguments (Unity's flags and ``--scene``)."""
    parser = argparse.ArgumentParser(
        prog="rayagents-sim",
        allow_abbrev=False,
        description="Run a scene as a Unity ML-Agents player: connect to the trainer on --mlagents-port. "
        "Other commands: 'rayagents-sim build NAME DIR', 'rayagents-sim list', 'rayagents-sim record SCENE ...'.",
    )
    parser.add_argument("--scene", required=True, help=f"the scene to run ({', '.join(scene_names())})")
    parser.add_argument("--mlagents-port", type=int, default=None, help="the trainer's port; without it, no training")
    parser.add_argument("-logFile", dest="log_file", nargs="?", const="-", default=None, help="log file; '-' = stdout")
    parser.add_argument("-batchmode", action="store_true", help="accepted (a simulator has no window)")
    parser.add_argument("-nographics", action="store_true", help="accepted (a simulator renders off-screen)")
    return parser


def _play(argv: Sequence[str]) -> int:
    """Run the player."""
    normalized = [_UNITY_FLAGS.get(arg.lower(), arg) if arg.startswith("-") else arg for arg in argv]
    options, unknown = player_parser().parse_known_args(normalized)
    handler = _log_handler(options.log_file)
    _configure_logging(handler)
    try:
        return _run_scene(options, unknown)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _run_scene(options: argparse.Namespace, unknown: Sequence[str]) -> int:
    """Load the scene and serve the trainer, if there is one."""
    if unknown:
        logger.info("Ignoring arguments this player does not use: %s", " ".join(unknown))
    try:
        scene = get_scene(options.scene)
    except UnknownSceneError as error:
        logger.error("%s", error)
        return EXIT_USAGE
    port = options.mlagents_port
    if port is None or port <= 0:
        logger.info(
            "No trainer port (--mlagents-port): a Unity player would run inference, which this player does not "
            "do. Scene '%s' quits.",
            scene.name,
        )
        return EXIT_OK
    logger.info("Scene '%s': connecting to the trainer on port %d.", scene.name, port)
    academy = Academy(scene, UnityClient(port))
    restore = _stop_on_signals(academy)
    try:
        return academy.run()
    finally:
        restore()


def _log_handler(log_file: str | None) -> logging.Handler:
    """Where the log goes: ``-logFile PATH`` (created with its folder), ``-`` for stdout, stderr by default."""
    if log_file == "-":
        return logging.StreamHandler(sys.stdout)
    if log_file is None:
        return logging.StreamHandler(sys.stderr)
    path = Path(log_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return logging.FileHandler(path, mode="w", encoding="utf-8")
    except OSError as error:
        print(f"rayagents-sim: cannot write the log file {path} ({error}); logging to stderr.", file=sys.stderr)
        return logging.StreamHandler(sys.stderr)


def _configure_logging(handler: logging.Handler) -> None:
    """Send rayagents' records at INFO and above (and every warning) to ``handler``."""
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("rayagents").setLevel(logging.INFO)


def _stop_on_signals(academy: Academy) -> Callable[[], None]:
    """Make SIGTERM ask ``academy`` to stop (goodbye, exit 0); returns a function that undoes it.

    The academy waits in a blocking gRPC call, so the work is not done in the signal handler (that runs in the
    main thread, inside gRPC's wait): the handler is a no-op that only replaces the default action (death), and
    the signal's number, written by the interpreter to a wakeup pipe, wakes a watcher thread that interrupts
    the academy's client. The call in flight is cancelled at once.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def watch() -> None:
        try:
            while True:
                received = os.read(read_fd, 64)
                if not received:  # the write end was closed: the player is done
                    return
                if signal.SIGTERM in received:
                    logger.info("SIGTERM received; stopping.")
                    academy.request_stop()
        finally:
            os.close(read_fd)

    def ignore(signum: int, frame: FrameType | None) -> None:
        """The watcher thread does the work (see above)."""

    previous_handler = signal.signal(signal.SIGTERM, ignore)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name="rayagents-sigterm", daemon=True)
    watcher.start()

    def restore() -> None:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGTERM, previous_handler)
        os.close(write_fd)
        watcher.join(timeout=1.0)

    return restore


__all__ = ["main", "player_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]
