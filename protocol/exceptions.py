"""Errors of the wire and of player processes, named as in ``mlagents_envs.exception``.

Each message says what went wrong, where (behavior, sensor, port, log path) and what to do.
"""


class UnityException(Exception):
    """The base of every error raised while talking to a player."""


class UnityEnvironmentException(UnityException):
    """The player could not be launched, exited, or is not compatible."""


class UnityCommunicationException(UnityException):
    """The gRPC connection to the player failed."""


class UnityCommunicatorStoppedException(UnityException):
    """The player closed the connection (it sent status 400 or quit)."""


class UnityObservationException(UnityException):
    """An observation could not be decoded or holds NaN/Inf."""


class UnityActionException(UnityException):
    """Actions were set with the wrong shape or for an unknown behavior or agent."""


class UnityTimeOutException(UnityException):
    """The player did not answer within ``timeout_wait`` seconds."""


class UnitySideChannelException(UnityException):
    """A side-channel message was malformed or a channel was registered twice."""


class UnityWorkerInUseException(UnityException):
    """The requested port is taken."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"Port {port} is already in use. Another training run or player may be using it: "
            "stop it, or let rayagents pick a free port (the default)."
        )
        self.port = port


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none (Ray's actor errors carry long
    explanations after it)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
