"""Keep Thespian's sockets off the network.

Thespian 4.0.1's TCP transport binds every endpoint (the admin and each actor)
to all interfaces, and its wire format is pickle: anyone who can reach one of
those ports can run code inside the agent (in a pod, that is every other pod).
No capability or environment variable changes the bind address, so before the
actor system starts we make the transport bind where it advertises itself:
127.0.0.1. Actor processes are forked from this one (Thespian's default start
method), so they inherit the change. tests/integration/test_loopback.py checks
every listening socket of a running agent.
"""

from __future__ import annotations

import os

LOOPBACK = "127.0.0.1"


def confine_to_loopback() -> None:
    """Make every Thespian socket created in this process (and its forks) bind
    to loopback. Idempotent."""
    # Advertised addresses: without this Thespian asks the routing table for a
    # "public" address (a UDP connect towards 8.8.8.8).
    os.environ["THESPIAN_BASE_IPADDR"] = LOOPBACK
    from thespian.system.transport import IPBase

    address_class = IPBase.IPActorAddress
    if getattr(address_class, "_keruta_loopback", False):
        return
    original_init = address_class.__init__

    def init_bound_to_loopback(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        host, port = self.bindname[:2]
        if host in ("", "0.0.0.0"):
            self.bindname = (LOOPBACK, port) + tuple(self.bindname[2:])

    address_class.__init__ = init_bound_to_loopback
    address_class._keruta_loopback = True
