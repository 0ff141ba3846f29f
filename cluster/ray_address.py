"""Naming and reaching a Ray cluster: ``--address`` (or ``RAY_ADDRESS``) as ``auto``, ``HOST:PORT`` or
``ray://HOST:PORT``, with Ray's token authentication on.

Ray turns token authentication on by itself only for a cluster it finds (``auto``); with an explicit address
(what a user on another machine of the cluster types) it connects without the token and, against a cluster that
requires one, retries for 20 s before a traceback. Here the cluster is checked before ``ray.init``, and when it
requires a token the token is used wherever Ray would find it (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
``~/.ray/auth_token``): a head that does not answer, or that refuses the token, is one :class:`ClusterConnectionError` that
says which and what to set, within seconds (Ray's own connect retries for 20 s, 30 s through Ray Client, then
says only that it could not connect).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rayagents.configs.errors import ConfigError

AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"
"""Ray's switch for token authentication (``token`` or ``disabled``)."""
TOKEN_VARIABLE = "RAY_AUTH_TOKEN"
"""A token given in the environment."""
TOKEN_PATH_VARIABLE = "RAY_AUTH_TOKEN_PATH"
"""A file holding the token."""
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")
"""Where ``ray start`` and ``ray get-auth-token --generate`` keep the token."""
CLIENT_SCHEME = "ray://"
"""The prefix of a Ray Client address (the head's client server, port 10001 by default)."""
CLIENT_ATTEMPTS = 3
"""How often a Ray Client connection is tried: its server sometimes fails to start a driver's session (a fresh
head's first one, most often) and the next try succeeds."""
PROBE_TIMEOUT_S = 5.0
"""How long the head may take to accept a connection before it counts as unreachable."""
SETTINGS_HINT = "set --address (or RAY_ADDRESS) to the head's HOST:PORT (6379 by default) or ray://HOST:10001"


class ClusterConnectionError(ConfigError):
    """A Ray cluster that cannot be reached or that refuses this machine's token: says which and what to do."""


@dataclass(frozen=True)
class ClusterAddress:
    """A parsed cluster address."""

    text: str
    """The address as given."""
    kind: str
    """``auto`` (find the cluster of this machine), ``gcs`` (the head's GCS, ``HOST:PORT``) or ``client``
    (``ray://HOST:PORT``)."""
    host: str = ""
    """The head's host (empty for ``auto``)."""
    port: int = 0
    """The head's port (0 for ``auto``)."""


def parse_address(text: str, source: str = "--address") -> ClusterAddress:
    """``text`` as a :class:`ClusterAddress`; ClusterConnectionError naming ``source`` for a malformed one."""
    if text == "auto":
        return ClusterAddress(text, "auto")
    kind, rest = ("client", text[len(CLIENT_SCHEME) :]) if text.startswith(CLIENT_SCHEME) else ("gcs", text)
    host, separator, port = rest.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterConnectionError(
            f"{source} {text!r} is not a Ray cluster address: use auto, HOST:PORT (the head's GCS port, 6379 by "
            f"default) or ray://HOST:PORT (Ray Client, port 10001 by default)"
        )
    return ClusterAddress(text, kind, host.strip("[]"), int(port))


def token_source() -> str | None:
    """Where Ray would read this machine's token from (in Ray's order), or None when there is none."""
    if os.environ.get(TOKEN_VARIABLE):
        return TOKEN_VARIABLE
    path = os.environ.get(TOKEN_PATH_VARIABLE)
    if path:
        return f"{TOKEN_PATH_VARIABLE} ({path})" if Path(path).expanduser().is_file() else None
    return str(DEFAULT_TOKEN_FILE) if DEFAULT_TOKEN_FILE.expanduser().is_file() else None


def enable_token_auth() -> str | None:
    """Turns Ray's token authentication on for this process and its children when this machine has a token and
    ``RAY_AUTH_MODE`` is not set (for a head that requires it: see :func:`check_cluster`); returns where the token
    is read from, or None."""
    source = token_source()
    if source is not None and AUTH_MODE_VARIABLE not in os.environ:
        os.environ[AUTH_MODE_VARIABLE] = "token"
        from ray._raylet import Config

        Config.initialize("")  # Ray reads the mode once per process: make it read it again
    return source


def check_cluster(address: ClusterAddress, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raises ClusterConnectionError when the head at ``address`` does not accept a connection within
    ``timeout_s``, or refuses this machine's authentication (its GCS, or its Ray Client server). ``auto`` is left to
    Ray.

    The driver's authentication is matched to the head's: with ``RAY_AUTH_MODE`` unset the head is asked without a
    token first, and token authentication is turned on (:func:`enable_token_auth`) only when the head requires it.
    A driver that used a token against a head without authentication would be connected, but the head could not
    call it back (it sends no token): its actors would be destroyed as soon as they were made."""
    if address.kind == "auto":
        return
    where = f"{address.host}:{address.port}"
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout_s):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise ClusterConnectionError(
            f"cannot reach the Ray cluster at {address.text} ({where}: {reason}); start its head with `ray start "
            f"--head`, or {SETTINGS_HINT}"
        ) from None
    ask = _gcs_answers if address.kind == "gcs" else _client_server_answers
    if ask(address):
        return
    if AUTH_MODE_VARIABLE not in os.environ and enable_token_auth() is not None and ask(address):
        return
    raise ClusterConnectionError(refused_message(address.text))


def _gcs_answers(address: ClusterAddress) -> bool:
    """Asks the head's GCS for one key with this process's authentication: True when it answers, False when it
    refuses the authentication; ClusterConnectionError when it is not a Ray head."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError, RayError

    try:
        GcsClient(address=f"{address.host}:{address.port}").internal_kv_get(
            b"session_name", namespace=b"session", timeout=PROBE_TIMEOUT_S
        )
    except AuthenticationError:
        return False
    except RayError as error:  # not a Ray head, or one that is still starting
        raise ClusterConnectionError(
            f"{address.text} answered but not as a Ray head ({str(error).splitlines()[0]}); {SETTINGS_HINT}"
        ) from None
    return True


def _client_server_answers(address: ClusterAddress) -> bool:
    """Pings the head's Ray Client server with this process's authentication: True when it answers, False when it
    refuses the authentication (Ray's own connect would retry for 30 s before saying only that it timed out);
    ClusterConnectionError when it is not a Ray Client server."""
    import grpc
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

    channel = init_grpc_channel(f"{address.host}:{address.port}", asynchronous=False)
    try:
        request = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)
        ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(request, timeout=PROBE_TIMEOUT_S)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return False
        raise ClusterConnectionError(
            f"{address.text} answered but not as a Ray Client server ({error.code().name}: {error.details()}); "
            f"{SETTINGS_HINT}"
        ) from None
    finally:
        channel.close()
    return True


def refused_message(address: str) -> str:
    """What to say when the cluster at ``address`` refuses this machine's token (or its lack of one)."""
    mode = os.environ.get(AUTH_MODE_VARIABLE, "token")
    if mode != "token":
        return (
            f"the Ray cluster at {address} requires its authentication token, and {AUTH_MODE_VARIABLE} is {mode!r} "
            f"here: unset it (or set it to 'token')"
        )
    source = token_source()
    if source is None:
        return (
            f"the Ray cluster at {address} requires its authentication token and this machine has none: copy the "
            f"head's ~/.ray/auth_token here, or set {TOKEN_VARIABLE} or {TOKEN_PATH_VARIABLE} (`ray get-auth-token` "
            f"on the head prints it)"
        )
    return (
        f"the Ray cluster at {address} refused the authentication token read from {source}: use the head's token "
        f"(`ray get-auth-token` on the head prints it) in {TOKEN_VARIABLE}, {TOKEN_PATH_VARIABLE} or "
        f"~/.ray/auth_token"
    )


def init_ray(address: ClusterAddress) -> Any:
    """``ray.init`` on ``address`` (after :func:`check_cluster`), trying a Ray Client address up to
    :data:`CLIENT_ATTEMPTS` times; returns Ray's context, or raises ClusterConnectionError saying what happened."""
    import ray

    attempts = CLIENT_ATTEMPTS if address.kind == "client" else 1
    for _ in range(attempts - 1):  # the tries that may fail
        try:
            return ray.init(address=address.text, logging_level="warning", log_to_driver=True)
        except ConnectionError:
            ray.shutdown()
            time.sleep(1.0)
    try:  # the last try
        return ray.init(address=address.text, logging_level="warning", log_to_driver=True)
    except ConnectionError as error:
        ray.shutdown()
        raise ClusterConnectionError(not_connected_message(address, error)) from None


def not_connected_message(address: ClusterAddress, error: Exception) -> str:
    """What to say when ``ray.init`` could not connect to ``address`` after :func:`check_cluster` let it through."""
    said = str(error).splitlines()[0] if str(error) else type(error).__name__
    if address.kind == "auto":
        return f"no Ray cluster was found on this machine for --address auto ({said}); {SETTINGS_HINT}"
    if address.kind == "client":
        return (
            f"the Ray Client server at {address.text} accepted this machine's token but could not start this "
            f"driver's session {CLIENT_ATTEMPTS} times ({said}); its log is ray_client_server.err in the head's "
            f"Ray session folder (/tmp/ray/session_latest/logs)"
        )
    return f"could not connect to the Ray cluster at {address.text} ({said}); {SETTINGS_HINT}"
