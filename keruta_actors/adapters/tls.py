"""The TLS context of every connection the agent opens (SPEC §10): trust comes
from the configuration alone (`websocket.security.verifyCert` and
`certPath`), never from variables such as WEBSOCKET_CLIENT_CA_BUNDLE, and the
host name is checked whenever the certificate is."""

from __future__ import annotations

import ssl


def client_context(verify_cert: bool, ca_file: str) -> ssl.SSLContext:
    """Verifying against `ca_file` (the system's CAs when empty), or not at all."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if not verify_cert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
