from keruta_actors.policy.server_errors import Fatal, Noted, Rejected, ServerErrors, SlowDown, error_type


def test_unauthorized_is_fatal_and_an_invalid_batch_is_rejected():
    errors = ServerErrors()
    assert isinstance(errors.received({"type": "error", "code": "UNAUTHORIZED", "message": "bad token"}, 0.0), Fatal)
    assert errors.received({"code": "INVALID_LOG_FORMAT", "message": "x", "batchId": 7}, 0.0) == Rejected(7)
    assert errors.received({"code": "INVALID_LOG_FORMAT", "message": "no batch named"}, 0.0) == Noted()
    assert errors.received({"code": "DATABASE_ERROR"}, 0.0) == Noted()


def test_rate_limits_slow_down_doubling_until_a_batch_is_confirmed():
    errors = ServerErrors()
    limited = {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}
    assert [errors.received(limited, 100.0) for _ in range(7)] == [
        SlowDown(101.0), SlowDown(102.0), SlowDown(104.0), SlowDown(108.0), SlowDown(116.0), SlowDown(130.0),
        SlowDown(130.0)]
    errors.confirmed()
    assert errors.received(limited, 200.0) == SlowDown(201.0)
    assert errors.received({**limited, "retryAfter": 3}, 200.0) == SlowDown(203.0)  # the server's word wins
    assert errors.received({**limited, "retryAfter": "soon"}, 200.0) == SlowDown(202.0)


def test_error_types_are_bounded():
    assert error_type("RATE_LIMIT_EXCEEDED") == "rate_limit_exceeded"
    assert error_type("SOMETHING_ELSE /tmp/x") == "other" and error_type(None) == "other"
