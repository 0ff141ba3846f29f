"""Cluster addresses as ``--address`` and ``RAY_ADDRESS`` take them, and where the token is read from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rayagents.cluster.ray_address import (
    ClusterAddress,
    ClusterConnectionError,
    enable_token_auth,
    parse_address,
    refused_message,
    token_source,
)


@pytest.fixture(autouse=True)
def bare_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token anywhere: an empty home, no authentication variables."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("auto", ClusterAddress("auto", "auto")),
        ("10.0.0.5:6379", ClusterAddress("10.0.0.5:6379", "gcs", "10.0.0.5", 6379)),
        ("head.internal:6380", ClusterAddress("head.internal:6380", "gcs", "head.internal", 6380)),
        ("ray://10.0.0.5:10001", ClusterAddress("ray://10.0.0.5:10001", "client", "10.0.0.5", 10001)),
        ("[::1]:6379", ClusterAddress("[::1]:6379", "gcs", "::1", 6379)),
    ],
)
def test_addresses_parse_into_kind_host_and_port(text: str, parsed: ClusterAddress) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", ["head", "head:", ":6379", "head:port", "head:70000", "ray://head", "http://x"])
def test_a_malformed_address_names_its_source_and_the_forms(text: str) -> None:
    with pytest.raises(ClusterConnectionError, match=rf"RAY_ADDRESS {text!r} is not a Ray cluster address: use auto"):
        parse_address(text, "RAY_ADDRESS")


def test_the_token_is_read_where_ray_reads_it_in_rays_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert token_source() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("a")
    assert token_source() == "~/.ray/auth_token"
    other = tmp_path / "token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(other))
    assert token_source() is None  # a path that names no file is no token, as for Ray
    other.write_text("b")
    assert token_source() == f"RAY_AUTH_TOKEN_PATH ({other})"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "c")
    assert token_source() == "RAY_AUTH_TOKEN"


def test_token_mode_is_turned_on_only_with_a_token_and_never_over_an_explicit_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert enable_token_auth() is None and "RAY_AUTH_MODE" not in os.environ
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "c")
    assert enable_token_auth() == "RAY_AUTH_TOKEN" and os.environ["RAY_AUTH_MODE"] == "disabled"
    assert "RAY_AUTH_MODE is 'disabled' here: unset it" in refused_message("10.0.0.5:6379")
    monkeypatch.delenv("RAY_AUTH_MODE")
    assert enable_token_auth() == "RAY_AUTH_TOKEN" and os.environ["RAY_AUTH_MODE"] == "token"
    assert "refused the authentication token read from RAY_AUTH_TOKEN" in refused_message("10.0.0.5:6379")


def test_no_token_says_where_to_put_one() -> None:
    message = refused_message("10.0.0.5:6379")
    assert "requires its authentication token and this machine has none" in message
    assert "RAY_AUTH_TOKEN" in message and "ray get-auth-token" in message
