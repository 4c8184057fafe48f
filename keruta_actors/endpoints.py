"""Where the agent may send what (SPEC §10).

The URL's scheme decides TLS, except that `websocket.security.enableSSL`
forces it. Credentials never travel in clear text to a host that is not
loopback unless `auth.allowClearTextCredentials` says so (keruta deploys its
API on plain HTTP inside the cluster): `config check` warns about such a
configuration, and the agent refuses it when it connects.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

# The TLS counterpart of each clear-text scheme.
_SECURE = {"ws": "wss", "http": "https"}


@dataclass(frozen=True, slots=True)
class Credentials:
    kind: str  # "bearer" | "api-key"
    secret: str


def credentials_from(auth) -> Credentials | None:
    """The credentials `auth` (config.Auth) configures, if any."""
    if auth.type == "api-key" and auth.api_key:
        return Credentials("api-key", auth.api_key)
    if auth.token:
        return Credentials("bearer", auth.token)
    return None


def is_loopback(host: str | None) -> bool:
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def websocket_endpoint(url: str, task_id: str, force_tls: bool) -> str:
    """`{websocket.url}/{taskId}`, upgraded to wss:// when TLS is forced."""
    return f"{tls_forced(url, force_tls).rstrip('/')}/{quote(task_id, safe='')}"


def task_endpoint(url: str, task_id: str, force_tls: bool) -> str:
    """`{api.url}/tasks/{taskId}`, upgraded to https:// when TLS is forced."""
    return f"{tls_forced(url, force_tls).rstrip('/')}/tasks/{quote(task_id, safe='')}"


def tls_forced(url: str, force_tls: bool) -> str:
    """`url` with ws:// or http:// made wss:// or https:// when TLS is forced."""
    scheme, sep, rest = url.partition("://")
    if force_tls and scheme in _SECURE:
        return f"{_SECURE[scheme]}{sep}{rest}"
    return url


ALLOW_CLEAR_TEXT = "auth.allowClearTextCredentials"


def clear_text_refusal(url: str, has_credentials: bool, allowed: bool = False) -> str | None:
    """Why credentials must not be sent to `url`, or None if they may."""
    parts = urlsplit(url)
    if has_credentials and not allowed and parts.scheme in _SECURE and not is_loopback(parts.hostname):
        secure = _SECURE[parts.scheme]
        return (f"refusing to send credentials in clear text to {parts.hostname} "
                f"(use {secure}://, or set {ALLOW_CLEAR_TEXT}: true for in-cluster HTTP)")
    return None
