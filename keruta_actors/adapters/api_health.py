"""The keruta API's health endpoint, for the health checker's `api` check.

`GET {api.url}/health`: the deployed keruta API's HealthController answers
at /api/v1/health, and so does the reference receiver. It blocks for up to
its timeout, so the health checker runs it on its worker thread. No
credentials are sent: a health endpoint does not need them. TLS is verified
as for delivery (adapters/tls.py), and proxies are not taken from the
environment (SPEC §10). urllib, not requests: this
check runs in every monitored run, and requests costs every run that loads
it megabytes and start-up time.
"""

from __future__ import annotations

import functools
import time
import urllib.error
import urllib.request

from keruta_actors.adapters.tls import client_context
from keruta_actors.errors import classify, root_cause
from keruta_actors.policy.health import Check, api_check


def health_url(api_url: str) -> str:
    return api_url.rstrip("/") + "/health"


def check_api(url: str, timeout: float, verify_cert: bool = True, ca_file: str = "") -> Check:
    started = time.monotonic()
    try:
        opener = _opener(url.startswith("https:"), verify_cert, ca_file)
        with opener.open(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        return api_check(None, time.monotonic() - started, f"{url}: {classify(root_cause(error))[1]}")
    return api_check(status, time.monotonic() - started)


@functools.cache
def _opener(tls: bool, verify_cert: bool, ca_file: str) -> urllib.request.OpenerDirector:
    """Built once: loading the system's CA certificates costs ~20 ms of CPU,
    which every check of an idle agent would otherwise pay; and not at all
    for plain HTTP."""
    handlers: list = [urllib.request.ProxyHandler({})]
    if tls:
        handlers.append(urllib.request.HTTPSHandler(context=client_context(verify_cert, ca_file)))
    return urllib.request.build_opener(*handlers)
