"""Where the agent may send what (SPEC §10).

The URL's scheme decides TLS, except that `websocket.security.enableSSL`
forces it. Credentials never travel in clear text to a host that is not
loopback: `config check` warns about such a configuration, and the agent
refuses it when it connects.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import quote, urlsplit


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
    if force_tls and url.startswith("ws://"):
        url = "wss://" + url[len("ws://") :]
    return f"{url.rstrip('/')}/{quote(task_id, safe='')}"


def rest_endpoint(url: str, task_id: str, force_tls: bool) -> str:
    """`{api.url}/tasks/{taskId}/logs`, upgraded to https:// when TLS is forced."""
    if force_tls and url.startswith("http://"):
        url = "https://" + url[len("http://") :]
    return f"{url.rstrip('/')}/tasks/{quote(task_id, safe='')}/logs"


def clear_text_refusal(url: str, has_credentials: bool) -> str | None:
    """Why credentials must not be sent to `url`, or None if they may."""
    parts = urlsplit(url)
    if has_credentials and parts.scheme in ("ws", "http") and not is_loopback(parts.hostname):
        secure = {"ws": "wss", "http": "https"}[parts.scheme]
        return f"refusing to send credentials in clear text to {parts.hostname} (use {secure}://)"
    return None
