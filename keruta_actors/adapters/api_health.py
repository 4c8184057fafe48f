"""The keruta API's health endpoint, for the health checker's `api` check.

`GET {api.url}/health`: the deployed keruta API's HealthController answers
at /api/v1/health, and so does the reference receiver. It blocks for up to
its timeout, so the health checker runs it on its worker thread. No
credentials are sent: a health endpoint does not need them. TLS is verified
as for delivery (`verify`: True, a CA bundle's path, or False).
"""

from __future__ import annotations

import time

import requests

from keruta_actors.errors import classify, root_cause
from keruta_actors.policy.health import Check, api_check


def health_url(api_url: str) -> str:
    return api_url.rstrip("/") + "/health"


def check_api(url: str, timeout: float, verify: bool | str = True) -> Check:
    started = time.monotonic()
    try:
        with requests.Session() as session:
            session.trust_env = False  # no proxies or CA bundles from the environment (SPEC §10)
            response = session.get(url, timeout=timeout, allow_redirects=False, verify=verify)
    except requests.RequestException as error:
        return api_check(None, time.monotonic() - started, f"{url}: {classify(root_cause(error))[1]}")
    return api_check(response.status_code, time.monotonic() - started)
