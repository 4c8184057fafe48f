"""The keruta API's REST endpoints for one task, over `requests` (SPEC §5).

    POST {api.url}/tasks/{taskId}/logs        one LogRequest
    POST {api.url}/tasks/{taskId}/logs/batch  a JSON array of them
    GET  {api.url}/tasks/{taskId}/script      the task's script (adapters/task_script.py)

Bodies arrive here already encoded (the LogMessage JSON the WebSocket sends
too: a superset of LogRequest whose `id` lets the server drop duplicates).
Every answer, and every failure to get one, comes back as an `Outcome` for
`policy.rest_delivery` to judge; nothing here raises for a failed request.
"""

from __future__ import annotations

import json

import requests
import urllib3

from keruta_actors.endpoints import Credentials, clear_text_refusal, credentials_from, task_endpoint
from keruta_actors.errors import LinkError, classify, root_cause
from keruta_actors.policy.rest_delivery import Outcome

# Enough of an answer to find an error's code. A longer one is cut off (and
# its connection not reused): a hostile server may send more.
MAX_BODY = 64 * 1024


class RestClient:
    def __init__(
        self,
        url: str,
        credentials: Credentials | None,
        timeout: float,
        verify_cert: bool = True,
        ca_file: str = "",
        allow_clear_text: bool = False,
    ) -> None:
        refusal = clear_text_refusal(url, credentials is not None, allow_clear_text)
        if refusal:
            raise LinkError(refusal, fatal=True)
        self.url = url  # {api.url}/tasks/{taskId}
        self.timeout = timeout
        self._session = requests.Session()
        # TLS trust (and proxies) come from our configuration alone: requests
        # would otherwise let REQUESTS_CA_BUNDLE override `verify`.
        self._session.trust_env = False
        self._session.headers["Content-Type"] = "application/json; charset=utf-8"
        if credentials is not None and credentials.kind == "api-key":
            self._session.headers["X-API-Key"] = credentials.secret
        elif credentials is not None:
            self._session.headers["Authorization"] = f"Bearer {credentials.secret}"
        self._session.verify = (ca_file or True) if verify_cert else False

    @classmethod
    def for_task(cls, settings, task_id: str) -> "RestClient":
        """The client for `task_id`'s endpoints under `settings` (config.Settings)."""
        api, security = settings.api, settings.websocket.security
        return cls(
            url=task_endpoint(api.url, task_id, security.enable_ssl),
            credentials=credentials_from(settings.auth),
            timeout=api.timeout,
            verify_cert=security.verify_cert,
            ca_file=security.cert_path,
            allow_clear_text=settings.auth.allow_clear_text_credentials,
        )

    def post_batch(self, records: list[str]) -> Outcome:
        return self._post(self.url + "/logs/batch", "[" + ",".join(records) + "]")

    def post_one(self, record: str) -> Outcome:
        return self._post(self.url + "/logs", record)

    def get_script(self, limit: int) -> tuple[Outcome, bytes]:
        """The task's script endpoint: its answer, and up to `limit` + 1 bytes of its body."""
        url = self.url + "/script"
        return self._request("GET", url, None, limit + 1)

    def close(self) -> None:
        self._session.close()

    def _post(self, url: str, body: str) -> Outcome:
        return self._request("POST", url, body.encode("utf-8"), MAX_BODY)[0]

    def _request(self, method: str, url: str, body: bytes | None, limit: int) -> tuple[Outcome, bytes]:
        try:
            # Streamed, so that a hostile server cannot make us hold a huge body.
            # Redirects are not followed: a 301 or 302 would turn the POST
            # into a GET, and another host would get our X-API-Key.
            with self._session.request(
                method, url, data=body, timeout=self.timeout, stream=True, allow_redirects=False
            ) as response:
                answer = response.raw.read(limit, decode_content=True)
                code = error_code(answer) if response.status_code >= 400 else ""
                outcome = Outcome(
                    response.status_code,
                    retry_after=response.headers.get("Retry-After"),
                    code=code,
                    location=response.headers.get("Location", "")[:200],
                )
                return outcome, answer
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            return Outcome(None, f"no answer from {url} within {self.timeout:g}s"), b""
        # The body is read through urllib3, whose errors requests does not wrap.
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            fatal, reason = classify(root_cause(error))
            return Outcome(None, f"cannot reach {url}: {reason}", fatal=fatal), b""


def error_code(body: bytes) -> str:
    """The `code` of an error body such as {"code":"TASK_NOT_FOUND",...}, or ""."""
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return ""
    return code[:64] if isinstance(code, str) else ""

