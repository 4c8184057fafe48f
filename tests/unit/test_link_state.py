from keruta_actors.policy.link_state import LinkState


def test_the_websocket_s_status_follows_what_the_supervisor_does():
    link = LinkState(now=10.0)
    assert (link.status, link.transport, link.down_since) == ("connecting", "websocket", 10.0)
    assert link.started("websocket") is False  # the first connection is not a reconnect
    link.up("websocket")
    assert (link.status, link.down_since) == ("connected", None)
    link.lost("websocket", now=20.0)
    assert (link.status, link.down_since) == ("disconnected", 20.0)
    assert link.started("websocket") is True
    assert link.status == "connecting"
    link.lost("websocket", now=25.0)
    assert link.down_since == 20.0  # down since the first failure
    link.using(None)
    assert link.transport == "spool"


def test_a_retired_websocket_stays_retired_while_it_is_probed_until_one_connects():
    link = LinkState(now=0.0)
    link.started("websocket")
    link.lost("websocket", now=1.0, unserved=True)
    link.started("rest")
    link.up("rest")
    link.using("rest")
    assert (link.status, link.transport) == ("retired", "rest")
    link.started("websocket")  # a probe
    link.lost("websocket", now=5.0)  # refused, this time
    assert link.status == "retired"
    link.started("websocket")
    link.up("websocket")
    assert link.status == "connected"
