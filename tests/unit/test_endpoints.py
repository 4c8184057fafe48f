from types import SimpleNamespace

import pytest

from keruta_actors.endpoints import (
    Credentials,
    credentials_from,
    rest_endpoint,
    websocket_endpoint,
)


def test_rest_endpoint_names_the_task_and_tls_can_be_forced():
    assert rest_endpoint("http://api:8080/api/v1/", "t1", False) == "http://api:8080/api/v1/tasks/t1/logs"
    assert rest_endpoint("http://api/api/v1", "t1", True) == "https://api/api/v1/tasks/t1/logs"
    assert rest_endpoint("https://api/api/v1", "t1", True) == "https://api/api/v1/tasks/t1/logs"


@pytest.mark.parametrize("endpoint", [rest_endpoint, websocket_endpoint])
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
