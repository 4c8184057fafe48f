"""TLS trust comes from the configuration alone (SPEC §10): `certPath` names
the CA on both transports, whatever REQUESTS_CA_BUNDLE or SSL_CERT_FILE say.
The real agent, over wss:// and https:// to a TLS proxy in front of the real
receiver."""

from __future__ import annotations

import time

import pytest

from tests.integration.tls_proxy import TlsProxy, make_ca, make_server_cert


@pytest.fixture
def tls(tmp_path, receiver):
    """(proxy, the CA that signed its certificate, another CA)."""
    trusted, ca_key, ca_cert = make_ca(tmp_path, "trusted-ca")
    other, _, _ = make_ca(tmp_path, "other-ca")
    cert, key = make_server_cert(tmp_path, ca_key, ca_cert)
    with TlsProxy(receiver.port, cert, key) as proxy:
        yield proxy, trusted, other


def over_tls(agent, proxy, cert_path, environment_ca):
    agent.env.update(
        KERUTA_WEBSOCKET_URL=f"wss://127.0.0.1:{proxy.port}/ws/tasks",
        KERUTA_API_URL=f"https://127.0.0.1:{proxy.port}/api/v1",
        KERUTA_WEBSOCKET__SECURITY__CERTPATH=str(cert_path),
        REQUESTS_CA_BUNDLE=str(environment_ca),
        SSL_CERT_FILE=str(environment_ca),
        CURL_CA_BUNDLE=str(environment_ca),
    )


def test_wss_trusts_cert_path_not_the_environment(agent, receiver, scripted_api, tls):
    proxy, trusted, other = tls
    over_tls(agent, proxy, cert_path=trusted, environment_ca=other)
    done = agent.run("start", "--task-id", "twss", "--", "sh", "-c", "echo one; echo two")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert [r["message"] for r in receiver.store.fetch("twss")] == ["one", "two"]
    assert not scripted_api.posts(), "delivered over REST, not the WebSocket"


def test_https_trusts_cert_path_not_the_environment(agent, receiver, scripted_api, tls):
    proxy, trusted, other = tls
    scripted_api.websocket = False  # the handshake is answered 503: REST at once
    over_tls(agent, proxy, cert_path=trusted, environment_ca=other)
    done = agent.run("start", "--task-id", "thttps", "--", "sh", "-c", "echo one; echo two")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert [r["message"] for r in receiver.store.fetch("thttps")] == ["one", "two"]
    assert scripted_api.posts(), "nothing was posted over https"


def test_a_ca_only_the_environment_trusts_is_refused_and_the_run_ends_at_once(agent, receiver, tls):
    """The other way round: the environment names the server's CA, certPath
    another. Both transports refuse the certificate, which retrying cannot
    fix: the agent spools the lines and exits with the child's code at once,
    not after drainTimeout (30 s by default)."""
    proxy, trusted, other = tls
    over_tls(agent, proxy, cert_path=other, environment_ca=trusted)
    agent.env["KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS"] = "1"
    began = time.monotonic()
    done = agent.run("start", "--task-id", "tenv", "--", "sh", "-c", "echo one; sleep 1; echo two; exit 5")
    took = time.monotonic() - began
    err = done.stderr.decode()
    assert done.returncode == 5, err[-2000:]
    assert receiver.store.fetch("tenv") == []
    assert "TLS certificate rejected" in err
    assert "2 are kept in the spool" in err
    assert took < 10, f"the agent waited {took:.1f}s with no transport left"
    print(f"\nFIGURES {{\"test\": \"all_transports_fatal\", \"exit_after_s\": {took:.2f}}}")
