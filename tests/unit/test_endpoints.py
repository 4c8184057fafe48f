from types import SimpleNamespace

import pytest

from keruta_actors.endpoints import (
    Credentials,
    clear_text_refusal,
    credentials_from,
    task_endpoint,
    websocket_endpoint,
)


def test_task_endpoint_names_the_task_and_tls_can_be_forced():
    assert task_endpoint("http://api:8080/api/v1/", "t1", False) == "http://api:8080/api/v1/tasks/t1"
    assert task_endpoint("http://api/api/v1", "t1", True) == "https://api/api/v1/tasks/t1"
    assert task_endpoint("https://api/api/v1", "t1", True) == "https://api/api/v1/tasks/t1"


@pytest.mark.parametrize("endpoint", [task_endpoint, websocket_endpoint])
def test_a_task_id_cannot_reach_another_path(endpoint):
    assert "/../" not in endpoint("http://api/base", "../admin", False)
    assert "%2F" in endpoint("http://api/base", "a/b", False)


@pytest.mark.parametrize(
    ("kind", "token", "api_key", "expected"),
    [
        ("bearer", "tok", "", Credentials("bearer", "tok")),
        ("api-key", "tok", "key", Credentials("api-key", "key")),
        ("api-key", "tok", "", Credentials("bearer", "tok")),
        ("bearer", "", "", None),
    ],
)
def test_credentials_follow_auth_type(kind, token, api_key, expected):
    assert credentials_from(SimpleNamespace(type=kind, token=token, api_key=api_key)) == expected


def test_clear_text_credentials_are_refused_to_a_remote_host_unless_allowed_by_name():
    remote = "http://keruta-svc.keruta.svc.cluster.local/api/v1/tasks/t"
    refusal = clear_text_refusal(remote, has_credentials=True)
    assert "keruta-svc.keruta.svc.cluster.local" in refusal and "auth.allowClearTextCredentials" in refusal
    assert clear_text_refusal(remote, has_credentials=True, allowed=True) is None
    assert clear_text_refusal(remote, has_credentials=False) is None  # no token, nothing to leak
    assert clear_text_refusal("http://127.0.0.1:8080/api/v1", has_credentials=True) is None
    assert clear_text_refusal("https://keruta.example/api/v1", has_credentials=True) is None
