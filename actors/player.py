"""Player processes: finding the executable in a Unity build, its command line, launching and ending it.

A player is launched in a session (and process group) of its own, so a Ctrl-C in the trainer's terminal does
not reach it, and on Linux with ``PR_SET_PDEATHSIG = SIGKILL``, so the kernel kills it when its parent dies,
even when the parent is killed with SIGKILL. The signal is armed by a small launcher (this interpreter, run
with ``-I -S``, which then execs the player in place: same pid, a few milliseconds) rather than by a
``preexec_fn``, which would make ``subprocess`` fork a process that serves gRPC.

Caveat of the parent-death signal: Linux sends it when the *thread* that created the child exits, not only
when the parent process does. Launch players from a thread that lives as long as they should (the main thread
of an actor process, for instance), never from a short-lived worker thread.
"""

from __future__ import annotations

import errno
import glob
import os
import signal
import subprocess
import sys
from collections import deque
from typing import Sequence

from rayagents.protocol.exceptions import UnityEnvironmentException

PORT_ARGUMENT = "--mlagents-port"
"""The command-line flag by which a Unity player learns the trainer's port."""

_STRIPPED_SUFFIXES = (".app", ".exe", ".x86_64", ".x86")
"""Suffixes removed from the path the user gives before the platform's candidates are tried."""


def _strip_build_suffix(env_path: str) -> str:
    path = os.path.expanduser(env_path.strip())
    changed = True
    while changed:
        changed = False
        for suffix in _STRIPPED_SUFFIXES:
            if path.endswith(suffix) and len(path) > len(suffix):
                path = path[: -len(suffix)]
                changed = True
    return path


def _candidates(path: str, platform: str) -> list[str]:
    """The executables to try for ``path`` (suffix stripped), in order, for ``platform`` (``sys.platform``)."""
    base = os.path.abspath(path)
    name = os.path.basename(base)
    if platform.startswith("darwin"):
        bundle = os.path.join(base + ".app", "Contents", "MacOS")
        return [os.path.join(bundle, name), *sorted(glob.glob(os.path.join(glob.escape(bundle), "*"))), base]
    if platform.startswith("win") or platform == "cygwin":
        others = sorted(
            exe
            for exe in glob.glob(os.path.join(glob.escape(base), "*.exe"))
            if not os.path.basename(exe).startswith("UnityCrashHandler")
        )
        return [base + ".exe", *others]
    in_folder = sorted(
        glob.glob(os.path.join(glob.escape(base), "*.x86_64")) + glob.glob(os.path.join(glob.escape(base), "*.x86"))
    )
    return [base + ".x86_64", base + ".x86", base, *(in_folder if len(in_folder) == 1 else [])]


def resolve_executable(env_path: str, platform: str = sys.platform) -> str:
    """The executable of the Unity build at ``env_path``, by ML-Agents' rules.

    The suffixes ``.app``, ``.exe``, ``.x86_64`` and ``.x86`` are stripped, then per platform the first file
    that exists wins: Linux ``PATH.x86_64``, ``PATH.x86``, then ``PATH`` itself (and, beyond ML-Agents, the
    one ``*.x86_64``/``*.x86`` inside a build folder); macOS ``PATH.app/Contents/MacOS/<name>``, then any
    file in ``PATH.app/Contents/MacOS``; Windows ``PATH.exe``, then any ``PATH/*.exe`` except
    ``UnityCrashHandler*.exe``. Raises UnityEnvironmentException listing every path tried.
    """
    stripped = _strip_build_suffix(env_path)
    tried: list[str] = []
    for candidate in _candidates(stripped, platform):
        if candidate in tried:
            continue
        tried.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    listing = "\n  ".join(tried)
    raise UnityEnvironmentException(
        f"Couldn't launch the environment {env_path!r}: no Unity player executable was found. Tried:\n  {listing}\n"
        "Give the path of the build's executable (for a Linux build, the .x86_64 file) or of the build "
        "without its extension."
    )


SIM_PREFIX = "sim:"
"""``--env sim:NAME`` runs scene NAME of the bundled simulation host instead of a Unity build."""


def player_command(env: str) -> tuple[str, list[str]]:
    """The executable and leading arguments that start the player ``env``.

    ``sim:NAME`` is the simulation host's scene NAME, run with this interpreter (the same as launching the
    build that ``rayagents-sim build NAME DIR`` writes); anything else is a Unity build, resolved by
    ``resolve_executable``.
    """
    if env.startswith(SIM_PREFIX):
        scene = env[len(SIM_PREFIX) :]
        if not scene:
            raise UnityEnvironmentException(
                f"--env {env!r} names no scene: write sim:NAME (list the scenes with `rayagents-sim list`)."
            )
        return sys.executable, ["-m", "rayagents.sims", "--scene", scene]
    return resolve_executable(env), []


def has_log_file_argument(args: Sequence[str]) -> bool:
    """True when ``args`` already name Unity's log file (``-logFile``, any case)."""
    return any(arg.lower() == "-logfile" for arg in args)


def player_arguments(
    port: int,
    *,
    worker_id: int = 0,
    no_graphics: bool = True,
    log_folder: str | None = None,
    additional_args: Sequence[str] = (),
) -> list[str]:
    """The player's command line (without the executable), in ML-Agents' order.

    ``-nographics -batchmode`` when headless; ``--mlagents-port PORT``; ``-logFile
    <log_folder>/Player-<worker_id>.log`` when a log folder is given and ``additional_args`` hold no
    ``-logFile`` of their own; then ``additional_args``.
    """
    args: list[str] = []
    if no_graphics:
        args += ["-nographics", "-batchmode"]
    args += [PORT_ARGUMENT, str(port)]
    if log_folder is not None and not has_log_file_argument(additional_args):
        args += ["-logFile", player_log_path(log_folder, worker_id)]
    args += list(additional_args)
    return args


def player_log_path(log_folder: str, worker_id: int) -> str:
    """Where player ``worker_id`` writes its log in ``log_folder``."""
    return os.path.join(os.path.abspath(log_folder), f"Player-{worker_id}.log")


def log_path_from_arguments(args: Sequence[str]) -> str | None:
    """The file named by ``-logFile`` in ``args`` (None when absent, or ``-`` for standard output)."""
    for i, arg in enumerate(args):
        if arg.lower() == "-logfile" and i + 1 < len(args) and args[i + 1] != "-":
            return os.path.abspath(args[i + 1])
    return None


def describe_exit(returncode: int) -> str:
    """``"return code N"`` and, when a signal ended the process, its name: ``"return code -9 (SIGKILL)"``."""
    text = f"return code {returncode}"
    if returncode < 0:
        try:
            text += f" ({signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return text


_LAUNCHER = """
import ctypes, os, signal, sys
errors, parent, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
try:
    os.set_inheritable(errors, False)
    if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    os.execv(argv[0], argv)
except OSError as error:
    os.write(errors, f"{error.errno}:{error.strerror}".encode())
    os._exit(127)
"""
"""Arms ``PR_SET_PDEATHSIG = SIGKILL`` (prctl option 1), then execs the player in the same process.

A ``preexec_fn`` would do the same between fork and exec, but it makes ``subprocess`` fork (not vfork), and a
fork runs gRPC's fork handlers, which in a process serving gRPC can abort the child before it execs. An exec
failure is written to the ``errors`` pipe, whose write end closes on a successful exec.
"""


def _launch_command(executable: str, args: Sequence[str], errors_fd: int | None) -> list[str]:
    """The command that starts the player: through the parent-death launcher on Linux, directly elsewhere."""
    if errors_fd is None:
        return [executable, *args]
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(errors_fd), str(os.getpid()), executable, *args]


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _launch_error(executable: str, number: int | None, text: str) -> UnityEnvironmentException:
    """The error for a player that could not be started (``number`` is the errno)."""
    if number in (errno.EACCES, errno.EPERM):
        folder = os.path.dirname(os.path.abspath(executable))
        return UnityEnvironmentException(
            f"Couldn't launch the player {executable}: permission denied. The file lacks the run bit: "
            f"set it with `chmod +x {executable}` (or for the whole build, `chmod -R 755 {folder}`)."
        )
    return UnityEnvironmentException(
        f"Couldn't launch the player {executable}: {text}. Check that it is a player built for this "
        "platform (a Linux build's executable ends in .x86_64)."
    )


class PlayerProcess:
    """A running player: its process (leader of its own process group), its log, and how to end it."""

    def __init__(self, executable: str, args: Sequence[str], *, log_path: str | None = None) -> None:
        """Launches ``executable args``; stdout and stderr go to ``log_path`` (appended) or are discarded.

        Raises UnityEnvironmentException when the file cannot be run (no run bit, wrong format, missing).
        """
        self._executable = executable
        self._log_path = log_path
        output = subprocess.DEVNULL
        log_file = None
        if log_path is not None:
            os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
            log_file = open(log_path, "ab")
            output = log_file
        errors_read, errors_write = os.pipe() if sys.platform.startswith("linux") else (None, None)
        try:
            self._process = subprocess.Popen(
                _launch_command(executable, args, errors_write),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                pass_fds=() if errors_write is None else (errors_write,),
            )
        except OSError as error:
            if errors_read is not None:
                os.close(errors_read)
            raise _launch_error(executable, error.errno, error.strerror or str(error)) from None
        finally:
            if log_file is not None:
                log_file.close()
            if errors_write is not None:
                os.close(errors_write)
        if errors_read is not None:
            failure = _read_all(errors_read).decode(errors="replace")
            os.close(errors_read)
            if failure:
                self._process.wait()
                number, _, text = failure.partition(":")
                raise _launch_error(executable, int(number) if number.isdigit() else None, text)

    @property
    def pid(self) -> int:
        """The player's process id (also its process group id)."""
        return self._process.pid

    @property
    def executable(self) -> str:
        """The executable that was launched."""
        return self._executable

    @property
    def log_path(self) -> str | None:
        """The player's log file (None when it keeps none)."""
        return self._log_path

    @property
    def returncode(self) -> int | None:
        """The exit status once the player has exited (negative: the signal that ended it), else None."""
        return self._process.poll()

    def poll(self) -> int | None:
        """Reaps the player if it has exited and returns its exit status (None while it runs)."""
        return self._process.poll()

    def check_alive(self) -> None:
        """Raises UnityEnvironmentException, naming the exit status and quoting the log's tail, if it exited."""
        returncode = self._process.poll()
        if returncode is None:
            return
        raise UnityEnvironmentException(
            f"Environment shut down with {describe_exit(returncode)}. {self._log_excerpt()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the player's log ("" when there is no log)."""
        if self._log_path is None:
            return ""
        try:
            with open(self._log_path, "r", encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except OSError:
            return ""

    def _log_excerpt(self, lines: int = 20) -> str:
        if self._log_path is None:
            return "The player keeps no log: give a log folder to keep one."
        tail = self.log_tail(lines).rstrip()
        if not tail:
            return f"Its log {self._log_path} is empty."
        return f"The last lines of its log {self._log_path}:\n{tail}"

    def close(self, timeout: float) -> int:
        """Waits up to ``timeout`` seconds for the player to exit, then kills its process group with SIGKILL.

        Returns the exit status.
        """
        try:
            return self._process.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            self._process.kill()
        return self._process.wait()
