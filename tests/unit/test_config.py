import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keruta_actors import config
from keruta_actors.config import (
    AlertRule,
    ConfigError,
    Settings,
    load_settings,
    masked_dict,
    settings_to_dict,
    validate_only,
)

DATA = Path(__file__).parent / "data"
SEED_YAML = DATA / "seed_config.yaml"
SEED_JSON = DATA / "seed_config.json"
SEED_BLOCKS = ["seed_logging_file.yaml", "seed_alerts.yaml", "seed_backup.yaml", "seed_debug.yaml"]
REPO = Path(__file__).parents[2]

# Each load builds a few dynaconf instances (~20 ms): keep examples few.
slow = settings(max_examples=25, deadline=None)


def load(*files, environ=None, **overrides):
    return load_settings([str(f) for f in files], overrides or None, environ or {})


def problems(*files, environ=None, **overrides):
    with pytest.raises(ConfigError) as error:
        load(*files, environ=environ, **overrides)
    return list(error.value.problems)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults --------------------------------------------------------------------------


def test_defaults_are_the_documented_ones():
    s = load()
    assert s.log_streaming.enabled is True
    assert s.log_streaming.buffer_size == 1000
    assert s.log_streaming.batch_size == 10
    assert s.log_streaming.flush_interval == 1.0
    assert s.log_streaming.level == "INFO"
    assert s.log_streaming.drain_timeout == 30.0
    assert s.log_streaming.partial_line_timeout == 0.5
    assert s.log_streaming.performance.rate_limit_per_task == 0
    assert s.log_streaming.performance.on_rate_limit == "delay"
    assert s.log_streaming.filters.exclude_patterns == (".*password.*", ".*secret.*", ".*token.*")
    assert s.log_streaming.spool == config.SpoolSettings(
        max_size=1024**3, segment_size=16 * 1024**2, fsync="interval", fsync_interval=1.0)
    assert s.websocket.url == "ws://localhost:8080/ws/tasks"
    assert (s.websocket.timeout, s.websocket.reconnect_interval, s.websocket.max_reconnect_attempts) == (30, 5, 10)
    assert s.websocket.security == config.Security(enable_ssl=False, verify_cert=True, cert_path="")
    assert s.api.url == "http://localhost:8080/api/v1"
    assert (s.api.timeout, s.api.retry_count, s.api.retry_interval) == (30, 3, 5)
    assert s.auth == config.Auth(token="", api_key="", type="bearer", allow_clear_text_credentials=False)
    assert s.monitoring.bind_address == "127.0.0.1"
    assert s.logging.file.max_age == 30 * 86400 and s.logging.file.compress is False
    assert s.alerts == (
        AlertRule("high_error_rate", "error_rate > 0.05", 300.0, "warning"),
        AlertRule("high_latency", "latency > 1s", 120.0, "warning"),
        AlertRule("memory_usage_high", "memory_usage > 80%", 60.0, "critical"),
        AlertRule("websocket_disconnected", "websocket_status != 'connected'", 30.0, "critical"),
    )
    assert s.alerting == config.Alerting(webhook_url="", timeout=10.0, evaluation_interval=5.0)
    assert s.backup.enabled is False and s.backup.schedule == "0 2 * * *"
    assert s.backup.retention == config.Retention(days=30, max_size=10 * 1024**3)
    assert (s.backup.storage.type, s.backup.storage.bucket, s.backup.storage.region) == (
        "s3", "keruta-logs", "ap-northeast-1")
    assert s.debug.enabled is False and s.debug.pprof.port == 6060


def test_defaults_give_no_warnings():
    assert validate_only(environ={}) == []


def test_top_level_settings_toml_is_the_package_file():
    top = REPO / "settings.toml"
    assert top.is_symlink()
    assert top.resolve() == config.DEFAULTS_FILE.resolve()
    assert not config.DEFAULTS_FILE.is_symlink()  # the package ships real content


def test_only_the_config_module_imports_dynaconf():
    importers = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "keruta_actors").rglob("*.py")
        if "import dynaconf" in path.read_text() or "from dynaconf" in path.read_text()
    ]
    assert importers == ["keruta_actors/config.py"]


# --- the design document's examples ---------------------------------------------------


def test_seed_yaml_and_json_load_unchanged_and_agree():
    from_yaml, from_json = load(SEED_YAML), load(SEED_JSON)
    assert from_yaml == from_json
    assert from_yaml.websocket.url == "ws://keruta-api:8080/ws/tasks"
    assert from_yaml.websocket.security == config.Security(True, True, "/path/to/cert.pem")
    assert from_yaml.websocket.heartbeat_interval == 30.0
    assert from_yaml.api.rate_limit == config.ApiRateLimit(requests_per_minute=1000, burst_size=100)
    assert from_yaml.log_streaming.performance.memory_limit_mb == 512
    assert from_yaml.log_streaming.filters.include_patterns == (".*",)
    assert from_yaml.logging.file.max_size == 100 * 1024**2
    assert from_yaml.monitoring.metrics == ("logCount", "errorRate", "latency", "memoryUsage")
    assert from_yaml.monitoring.prometheus == config.Prometheus(enabled=False, port=9090)


def test_seed_yaml_only_warns_about_the_placeholder_cert_path():
    assert validate_only([str(SEED_YAML)], environ={}) == [
        "websocket.security.certPath: no such file '/path/to/cert.pem'"]


def test_seed_operation_blocks_load_together():
    s = load(SEED_YAML, *(DATA / name for name in SEED_BLOCKS))
    assert s.logging.file == config.LogFile(
        enabled=True, path="/var/log/keruta-agent.log", max_size=100 * 1024**2, max_backups=5,
        max_age=30 * 86400.0, compress=True, format="json")
    assert s.alerts[1] == AlertRule("high_latency", "latency > 1s", 120.0, "warning")
    assert s.alerts[3].condition == "websocket_status != 'connected'"
    assert s.backup.enabled is True
    assert s.debug == config.Debug(True, "DEBUG", config.Pprof(True, 6060), config.Trace(False, "/tmp/trace.out"))


# --- sources and precedence -------------------------------------------------------------


def test_a_file_setting_one_key_keeps_the_other_defaults(tmp_path):
    s = load(write(tmp_path, "c.yaml", "websocket:\n  url: wss://example.org/ws\n"))
    assert s.websocket.url == "wss://example.org/ws"
    assert s.websocket.timeout == 30.0 and s.websocket.security.verify_cert is True


def test_a_list_in_a_file_replaces_the_default_list(tmp_path):
    s = load(write(tmp_path, "c.yaml", "logStreaming:\n  filters:\n    includePatterns: ['^ERROR']\n"
                   "alerts:\n  - {name: x, condition: 'latency > 2s', duration: 1m, severity: info}\n"))
    assert s.log_streaming.filters.include_patterns == ("^ERROR",)
    assert s.alerts == (AlertRule("x", "latency > 2s", 60.0, "info"),)


def test_toml_files_and_an_empty_value_meaning_not_set(tmp_path):
    toml = write(tmp_path, "c.toml", "[api]\ntimeout = '10s'\n[api.rateLimit]\nburstSize = 7\n")
    yaml = write(tmp_path, "d.yml", "api:\n  retryCount:\n")
    s = load(toml, yaml)
    assert (s.api.timeout, s.api.rate_limit.burst_size, s.api.retry_count) == (10.0, 7, 3)


def test_precedence_defaults_files_env_nested_env_flags(tmp_path):
    first = write(tmp_path, "first.yaml", "logStreaming: {batchSize: 2, bufferSize: 2000}\n")
    second = write(tmp_path, "second.json", json.dumps({"logStreaming": {"batchSize": 3, "maxRetries": 9}}))
    config_var = {"KERUTA_CONFIG": str(first)}
    documented = dict(config_var, KERUTA_LOG_BATCH_SIZE="4")
    nested = dict(documented, KERUTA_LOGSTREAMING__BATCHSIZE="5")

    def batch_size(files, environ, overrides=None):
        return load_settings(files, overrides, environ).log_streaming.batch_size

    assert batch_size([], {}) == 10
    assert batch_size([], config_var) == 2
    assert batch_size([second], config_var) == 3
    assert batch_size([second], documented) == 4
    assert batch_size([second], nested) == 5
    assert batch_size([second], nested, {"logStreaming.batchSize": 6}) == 6
    # What no higher layer sets comes from the layer that does.
    s = load_settings([second], {"logStreaming.batchSize": 6}, nested)
    assert (s.log_streaming.buffer_size, s.log_streaming.max_retries) == (2000, 9)


def test_keruta_config_lists_several_files_loaded_before_config_flags(tmp_path):
    a = write(tmp_path, "a.yaml", "api: {retryCount: 1, timeout: 1s}\n")
    b = write(tmp_path, "b.yaml", "api: {retryCount: 2}\n")
    c = write(tmp_path, "c.yaml", "api: {timeout: 3s}\n")
    s = load_settings([c], None, {"KERUTA_CONFIG": f"{a},{b}"})
    assert (s.api.retry_count, s.api.timeout) == (2, 3.0)
    s = load_settings([], None, {"KERUTA_CONFIG": f"{a}{os.pathsep}{b}"})
    assert s.api.retry_count == 2


def test_documented_environment_variables():
    environ = {
        "KERUTA_LOG_STREAMING_ENABLED": "false", "KERUTA_LOG_BUFFER_SIZE": "5000",
        "KERUTA_LOG_FLUSH_INTERVAL": "2", "KERUTA_LOG_LEVEL": "warning",
        "KERUTA_WEBSOCKET_URL": "wss://api.example.org/ws/tasks/", "KERUTA_WEBSOCKET_TIMEOUT": "1m",
        "KERUTA_WEBSOCKET_RECONNECT_INTERVAL": "500ms", "KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS": "20",
        "KERUTA_API_URL": "https://api.example.org/api/v1", "KERUTA_API_TIMEOUT": "45",
        "KERUTA_API_RETRY_COUNT": "5", "KERUTA_API_RETRY_INTERVAL": "10s",
        "KERUTA_AUTH_TOKEN": "123456", "KERUTA_API_KEY": "true", "KERUTA_AUTH_TYPE": "API-KEY",
        "KERUTA_TASK_ID": "task-1", "KERUTA_SOMETHING_ELSE": "x", "PATH": "/bin",
    }
    s = load(environ=environ)
    assert s.log_streaming.enabled is False
    assert (s.log_streaming.buffer_size, s.log_streaming.flush_interval, s.log_streaming.level) == (5000, 2.0, "WARN")
    assert s.websocket == config.WebSocket("wss://api.example.org/ws/tasks", 60.0, 0.5, 20, 30.0, s.websocket.security)
    assert (s.api.url, s.api.timeout, s.api.retry_count, s.api.retry_interval) == (
        "https://api.example.org/api/v1", 45.0, 5, 10.0)
    # String settings take the text verbatim: a numeric token stays a string.
    assert s.auth == config.Auth(token="123456", api_key="true", type="api-key", allow_clear_text_credentials=False)


@pytest.mark.parametrize("text, expected", [("true", True), ("False", False), ("1", True), ("0", False),
                                            ("yes", True), ("off", False)])
def test_booleans_from_the_environment(text, expected):
    assert load(environ={"KERUTA_LOG_STREAMING_ENABLED": text}).log_streaming.enabled is expected


def test_nested_environment_variables_map_onto_camel_case():
    s = load(environ={
        "KERUTA_WEBSOCKET__HEARTBEATINTERVAL": "10s",
        "KERUTA_LOGSTREAMING__PERFORMANCE__RATELIMITPERSECOND": "0",
        "KERUTA_LOG_STREAMING__PERFORMANCE__MEMORY_LIMIT_MB": "64",
        "KERUTA_LOGSTREAMING__FILTERS__EXCLUDEPATTERNS": '["^a", "b$"]',
        "KERUTA_WEBSOCKET__SECURITY__ENABLESSL": "true",
        "KERUTA_MONITORING__METRICS": "latency",
        "KERUTA_ALERTS": '[{name="x", condition="error_rate > 0.5", duration="1s", severity="critical"}]',
    })
    assert s.websocket.heartbeat_interval == 10.0
    assert s.log_streaming.performance.rate_limit_per_second == 0.0
    assert s.log_streaming.performance.memory_limit_mb == 64
    assert s.log_streaming.filters.exclude_patterns == ("^a", "b$")
    assert s.websocket.security.enable_ssl is True
    assert s.monitoring.metrics == ("latency",)
    assert s.alerts == (AlertRule("x", "error_rate > 0.5", 1.0, "critical"),)


def test_overrides_take_dotted_keys_sections_and_skip_none():
    s = load(**{"logging.level": "debug", "websocket": {"url": "ws://127.0.0.1:9/ws"}, "api.timeout": None})
    assert s.logging.level == "DEBUG"
    assert s.websocket.url == "ws://127.0.0.1:9/ws" and s.websocket.timeout == 30.0
    assert s.api.timeout == 30.0


# --- problems: one line each, all of them ----------------------------------------------


def test_every_problem_is_listed_one_line_each(tmp_path):
    bad = write(tmp_path, "bad.yaml", """
logStreaming:
  batchSize: ten
  filters:
    excludePatterns: [".*ok.*", "("]
websocket:
  reconectInterval: 5s
""")
    assert problems(bad) == [
        "websocket.reconectInterval: unknown key (did you mean 'reconnectInterval'?)",
        "logStreaming.batchSize: expected an integer >= 1, got 'ten'",
        "logStreaming.filters.excludePatterns[1]: invalid regex '(': missing ), "
        "unterminated subpattern at position 0",
    ]


def test_file_problems_name_the_file_and_do_not_hide_others(tmp_path):
    missing = tmp_path / "missing.yaml"
    broken_yaml = write(tmp_path, "broken.yaml", "logStreaming:\n  batchSize: [\n")
    broken_json = write(tmp_path, "broken.json", '{"api": ')
    broken_toml = write(tmp_path, "broken.toml", "[api\n")
    a_list = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    wrong_type = write(tmp_path, "conf.ini", "[api]\n")
    found = problems(missing, tmp_path, broken_yaml, broken_json, broken_toml, a_list, wrong_type,
                     **{"api.retryCount": -1})
    assert len(found) == 8
    assert found[0] == f"{missing}: cannot read: No such file or directory"
    assert found[1].startswith(f"{tmp_path}: ")
    for line, path in zip(found[2:5], [broken_yaml, broken_json, broken_toml]):
        assert line.startswith(f"{path}: cannot parse: ") and "\n" not in line
    assert found[5] == f"{a_list}: expected a mapping of sections at the top level"
    assert found[6].startswith(f"{wrong_type}: unsupported config file type")
    assert found[7] == "api.retryCount: expected an integer >= 0, got -1"


def test_problems_follow_the_order_of_the_sources(tmp_path):
    conf = write(tmp_path, "c.yaml", "api: {retyCount: 1}\n")
    found = problems(conf, environ={"KERUTA_API__TIMEOT": "1"}, **{"api.urll": "x"})
    assert [line.split(": ")[0] for line in found] == [
        "api.retyCount", "KERUTA_API__TIMEOT (api.TIMEOT)", "api.urll"]


@pytest.mark.parametrize(
    "key, value, line",
    [
        ("logStreaming.bufferSize", 0, "logStreaming.bufferSize: expected an integer >= 1, got 0"),
        ("logStreaming.batchSize", True, "logStreaming.batchSize: expected an integer >= 1, got True"),
        ("logStreaming.performance.memoryLimitMB", 8,
         "logStreaming.performance.memoryLimitMB: expected an integer >= 16, got 8"),
        ("logStreaming.performance.rateLimitPerSecond", -1,
         "logStreaming.performance.rateLimitPerSecond: expected a number >= 0, got -1"),
        ("logStreaming.performance.onRateLimit", "block",
         "logStreaming.performance.onRateLimit: expected one of 'delay', 'drop', got 'block'"),
        ("logStreaming.filters.maxMessageLength", 0,
         "logStreaming.filters.maxMessageLength: expected an integer >= 1, got 0"),
        ("logStreaming.spool.fsync", "sometimes",
         "logStreaming.spool.fsync: expected one of 'never', 'interval', 'always', got 'sometimes'"),
        ("logStreaming.spool.fsyncInterval", 0, "logStreaming.spool.fsyncInterval: expected a duration > 0 "
         "such as '500ms', '1s', '5m', '2h', '30d' or a number of seconds, got 0"),
        ("logStreaming.spool.maxSize", "0MB", "logStreaming.spool.maxSize: expected a size > 0 such as "
         "'512KB', '100MB', '10GB' or a number of bytes, got '0MB'"),
        ("logStreaming.level", "LOUD",
         "logStreaming.level: expected one of 'DEBUG', 'INFO', 'WARN', 'ERROR', got 'LOUD'"),
        ("logStreaming.enabled", "maybe", "logStreaming.enabled: expected true or false, got 'maybe'"),
        ("logStreaming.flushInterval", "soon", "logStreaming.flushInterval: expected a duration such as "
         "'500ms', '1s', '5m', '2h', '30d' or a number of seconds, got 'soon'"),
        ("websocket.heartbeatInterval", "0s", "websocket.heartbeatInterval: expected a duration > 0 such as "
         "'500ms', '1s', '5m', '2h', '30d' or a number of seconds, got '0s'"),
        ("websocket.url", "http://h/ws", "websocket.url: expected a ws:// or wss:// URL with a host and no "
         "query, got 'http://h/ws'"),
        ("websocket.url", "ws:///ws", "websocket.url: expected a ws:// or wss:// URL with a host and no "
         "query, got 'ws:///ws'"),
        ("websocket.url", "ws://h:99999/ws", "websocket.url: expected a ws:// or wss:// URL with a host and "
         "no query, got 'ws://h:99999/ws'"),
        ("api.url", "ws://h/api", "api.url: expected a http:// or https:// URL with a host and no query, "
         "got 'ws://h/api'"),
        ("websocket.security.certPath", 5, "websocket.security.certPath: expected a string, got 5"),
        ("auth.type", "basic", "auth.type: expected one of 'bearer', 'api-key', got 'basic'"),
        ("logging.format", "xml", "logging.format: expected one of 'json', 'text', got 'xml'"),
        ("logging.output", "syslog", "logging.output: expected one of 'stdout', 'stderr', 'file', got 'syslog'"),
        ("logging.file.maxSize", "big", "logging.file.maxSize: expected a size > 0 such as '512KB', '100MB', "
         "'10GB' or a number of bytes, got 'big'"),
        ("monitoring.prometheus.port", 0, "monitoring.prometheus.port: expected an integer from 1 to 65535, got 0"),
        ("debug.pprof.port", 65536, "debug.pprof.port: expected an integer from 1 to 65535, got 65536"),
        ("monitoring.bindAddress", "not an address",
         "monitoring.bindAddress: expected an IP address or host name, got 'not an address'"),
        ("monitoring.metrics", ["latency", "latncy"],
         "monitoring.metrics[1]: unknown metric 'latncy' (did you mean 'latency'?)"),
        ("backup.schedule", "0 25 * * *", "backup.schedule: invalid cron expression '0 25 * * *': "
         "hour field: 25 is out of range 0-23"),
        ("backup.retention.days", 0, "backup.retention.days: expected an integer >= 1, got 0"),
        ("backup.storage.type", "gcs", "backup.storage.type: expected one of 's3', 'local', got 'gcs'"),
        ("backup.storage.endpoint", "minio:9000", "backup.storage.endpoint: expected a http:// or https:// "
         "URL with a host and no query, got 'minio:9000'"),
        ("websocket", "on", "websocket: expected a mapping of settings, got 'on'"),
        ("alerts", {"name": "x"}, "alerts: expected a list, got {'name': 'x'}"),
    ],
)
def test_bad_values_are_reported_with_path_and_value(key, value, line):
    assert problems(**{key: value}) == [line]


@pytest.mark.parametrize(
    "condition", ["latency 1s", "latency >", "> 1s", "latency => 1s", "websocket_status != connected",
                  "error_rate > 0.05 and latency > 1s", "1x > 2"],
)
def test_bad_alert_conditions(condition):
    rule = {"name": "r", "condition": condition, "duration": "1m", "severity": "warning"}
    [line] = problems(alerts=[rule])
    assert line.startswith("alerts[0].condition: expected a condition 'signal op value'")
    assert repr(condition) in line


@pytest.mark.parametrize(
    "condition", ["error_rate > 0.05", "latency>=1s", "memory_usage < 80%", "websocket_status == \"retired\"",
                  "spool_bytes != 512MB", "buffer_usage <= .5"],
)
def test_good_alert_conditions(condition):
    rule = {"name": "r", "condition": condition, "duration": "1m", "severity": "critical"}
    assert load(alerts=[rule]).alerts[0].condition == condition


@pytest.mark.parametrize("condition, line", [
    ("nosuch_signal > 1", "alerts[0].condition: unknown signal 'nosuch_signal' in 'nosuch_signal > 1' "
     "(known signals: error_rate, latency, memory_usage, websocket_status, buffer_usage, spool_bytes)"),
    ("latncy > 1s", "alerts[0].condition: unknown signal 'latncy' in 'latncy > 1s' (did you mean 'latency'?)"),
    ("memory_usage > 80", "alerts[0].condition: memory_usage is a share from 0 to 1 in 'memory_usage > 80' "
     "(did you mean '80%'?)"),
])
def test_alert_conditions_that_parse_but_cannot_be_evaluated(condition, line):
    rule = {"name": "r", "condition": condition, "duration": "1m", "severity": "warning"}
    assert problems(alerts=[rule]) == [line]


def test_alerting_webhook_is_an_http_url_or_empty():
    assert load(**{"alerting.webhookUrl": "http://127.0.0.1:9093/"}).alerting.webhook_url == "http://127.0.0.1:9093"
    assert problems(**{"alerting.webhookUrl": "alertmanager:9093"}) == [
        "alerting.webhookUrl: expected a http:// or https:// URL with a host and no query, got 'alertmanager:9093'"]


def test_alert_rules_need_every_field_and_known_keys():
    assert problems(alerts=[{"name": "r", "condition": "latency > 1s", "severity": "warning", "durration": "1m"}]) == [
        "alerts[0].durration: unknown key (did you mean 'duration'?)",
        "alerts[0].duration: missing",
    ]


def test_settings_that_depend_on_each_other():
    assert problems(**{"logging.output": "file", "logging.file.path": ""}) == [
        "logging.file.path: required when logging.output is 'file' or logging.file.enabled is true, got ''"]
    rule = {"name": "dup", "condition": "latency > 1s", "duration": "1m", "severity": "info"}
    assert problems(alerts=[rule, rule]) == ["alerts: rule name 'dup' is used more than once"]
    assert problems(backup={"enabled": True, "storage": {"type": "local"}}) == [
        "backup.storage.path: required for storage type 'local', got ''"]
    assert problems(debug={"enabled": True}, **{"monitoring.prometheus.port": 6060}) == [
        "debug.pprof.port: 6060 is also monitoring.prometheus.port; the two servers need different ports"]
    assert problems(**{"logStreaming.spool.maxSize": "1MB", "logStreaming.spool.segmentSize": "2MB"}) == [
        "logStreaming.spool.segmentSize: 2097152 bytes is larger than logStreaming.spool.maxSize (1048576 bytes)"]


def test_spool_settings_from_a_file_and_the_environment(tmp_path):
    conf = write(tmp_path, "c.yaml", "logStreaming:\n  spool: {maxSize: 2GB, fsync: always}\n")
    s = load(conf, environ={"KERUTA_LOGSTREAMING__SPOOL__FSYNCINTERVAL": "250ms"})
    assert s.log_streaming.spool == config.SpoolSettings(
        max_size=2 * 1024**3, segment_size=16 * 1024**2, fsync="always", fsync_interval=0.25)


def test_unknown_keys_everywhere_get_a_hint():
    assert problems(**{"websocket.reconectInterval": "5s"}) == [
        "websocket.reconectInterval: unknown key (did you mean 'reconnectInterval'?)"]
    [line] = problems(**{"zzz": 1})
    assert line.startswith("zzz: unknown key (known keys: logStreaming, websocket,")
    assert problems(environ={"KERUTA_WEBSOCKET__RECONECTINTERVAL": "5"}) == [
        "KERUTA_WEBSOCKET__RECONECTINTERVAL (websocket.RECONECTINTERVAL): unknown key "
        "(did you mean 'reconnectInterval'?)"]
    assert problems(environ={"KERUTA_LOG_BATCHSIZE": "5"}) == [
        "KERUTA_LOG_BATCHSIZE: not a known variable (did you mean KERUTA_LOG_BATCH_SIZE?)"]
    assert problems(environ={"KERUTA_API__URL__HOST": "x"}) == ["KERUTA_API__URL__HOST: 'api.url' has no keys below it"]


def test_an_empty_variable_means_not_set():
    s = load(environ={"KERUTA_LOG_BATCH_SIZE": "", "KERUTA_AUTH_TOKEN": "", "KERUTA_WEBSOCKET__TIMEOUT": ""})
    assert (s.log_streaming.batch_size, s.auth.token, s.websocket.timeout) == (10, "", 30.0)


def test_unrelated_keruta_variables_are_not_settings(tmp_path):
    conf = write(tmp_path, "c.yaml", "api: {retryCount: 1}\n")
    s = load(environ={"KERUTA_TASK_ID": "t-1", "KERUTA_CONFIG": str(conf), "KERUTA_HYPOTHESIS_PROFILE": "ci"})
    assert s.api.retry_count == 1


def test_config_error_pickles_and_prints_one_line_per_problem():
    error = ConfigError(["a: bad", "b: worse"])
    assert str(error) == "a: bad\nb: worse"
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == ("a: bad", "b: worse")


# --- warnings -----------------------------------------------------------------------------


def test_clear_text_credentials_to_a_remote_host_are_warned_about():
    remote = {"websocket.url": "ws://keruta-api:8080/ws/tasks", "api.url": "http://keruta-api:8080/api/v1"}
    assert validate_only((), remote, {}) == []  # no credentials, nothing to leak
    warnings = validate_only((), remote, {"KERUTA_AUTH_TOKEN": "t" * 40})
    assert [w.split(":")[0] for w in warnings] == ["websocket.url", "api.url"]
    assert all("clear text to keruta-api" in w and "auth.allowClearTextCredentials" in w for w in warnings)
    allowed = {"KERUTA_AUTH_TOKEN": "t" * 40, "KERUTA_AUTH__ALLOWCLEARTEXTCREDENTIALS": "true"}
    assert validate_only((), remote, allowed) == []
    tls = {"websocket.url": "wss://keruta-api/ws", "api.url": "https://keruta-api/api/v1"}
    assert validate_only((), tls, {"KERUTA_AUTH_TOKEN": "t" * 40}) == []
    forced = dict(remote, **{"websocket.security.enableSSL": True, "api.url": "http://[::1]:8080/api"})
    assert validate_only((), forced, {"KERUTA_API_KEY": "k", "KERUTA_AUTH_TYPE": "api-key"}) == []
    # enableSSL upgrades http:// to https:// too (endpoints.task_endpoint)
    assert validate_only((), dict(remote, **{"websocket.security.enableSSL": True}), {"KERUTA_AUTH_TOKEN": "t"}) == []
    assert validate_only((), None, {"KERUTA_AUTH_TOKEN": "t"}) == []  # localhost defaults


def test_auth_type_without_its_credential_is_warned_about():
    assert validate_only((), None, {"KERUTA_API_KEY": "k"}) == [
        "auth.type: 'bearer' but only auth.apiKey is set; no credential will be sent"]


# --- secrets ----------------------------------------------------------------------------------

SECRETS = ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0YXNrIn0.c2lnbmF0dXJl", "short", "exactly12chr"]


@pytest.mark.parametrize("secret", SECRETS)
def test_masked_dict_never_contains_a_secret(secret):
    s = load(environ={"KERUTA_AUTH_TOKEN": secret, "KERUTA_API_KEY": secret,
                      "KERUTA_API_URL": f"https://agent:{secret}@api.example.org/api/v1"})
    shown = json.dumps(masked_dict(s))
    assert secret not in shown
    assert settings_to_dict(s)["auth"]["token"] == secret  # unmasked on purpose
    masked = masked_dict(s)
    assert masked["auth"]["token"].startswith("****")
    assert masked["api"]["url"] == "https://agent:****@api.example.org/api/v1"


def test_long_secrets_keep_their_last_four_characters_short_ones_nothing():
    assert config.mask_secret("") == ""
    assert config.mask_secret("abcdefghijklmnop") == "****mnop"
    assert config.mask_secret("abcdefghijkl") == "****"


def test_a_badly_typed_secret_is_not_echoed(tmp_path):
    conf = write(tmp_path, "c.yaml", "auth:\n  token: 987654321987\n")
    [line] = problems(conf)
    assert line == "auth.token: expected a string, got int (value not shown)"
    assert "987654321987" not in line


# --- the settings objects ----------------------------------------------------------------


def _objects(obj):
    yield obj
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if dataclasses.is_dataclass(child):
                yield from _objects(child)
            else:
                assert isinstance(child, (str, int, float, bool)), (f.name, child)


def test_settings_are_frozen_plain_and_pickle():
    s = load(SEED_YAML, *(DATA / name for name in SEED_BLOCKS))
    assert pickle.loads(pickle.dumps(s)) == s
    for obj in _objects(s):
        assert pickle.loads(pickle.dumps(obj)) == obj
        first = dataclasses.fields(obj)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, first, None)
        assert not hasattr(obj, "__dict__")  # slotted


@pytest.mark.parametrize("files", [[], [SEED_YAML], [SEED_JSON, *(DATA / n for n in SEED_BLOCKS)]])
def test_settings_to_dict_round_trips_through_overrides(files):
    s = load(*files)
    as_dict = settings_to_dict(s)
    assert load_settings((), as_dict, {}) == s
    json.dumps(as_dict)  # plain data
    flat = {f"{section}.{key}": value for section, keys in as_dict.items() if isinstance(keys, dict)
            for key, value in keys.items()}
    assert load_settings((), dict(flat, alerts=as_dict["alerts"]), {}) == s


@slow
@given(st.integers(-5, 10**9))
def test_batch_size_accepts_exactly_the_positive_integers(size):
    for value in (size, str(size)):
        if size >= 1:
            assert load(**{"logStreaming.batchSize": value}).log_streaming.batch_size == size
        else:
            assert problems(**{"logStreaming.batchSize": value}) == [
                f"logStreaming.batchSize: expected an integer >= 1, got {value!r}"]


@slow
@given(st.integers(0, 10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_durations_from_the_environment_arrive_in_seconds(number, unit):
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    s = load(environ={"KERUTA_DEBUG__TRACE__ENABLED": "1", "KERUTA_LOGSTREAMING__DRAINTIMEOUT": f"{number}{unit}",
                      "KERUTA_API_RETRY_INTERVAL": str(number)})
    assert s.log_streaming.drain_timeout == pytest.approx(number * factor)
    assert s.api.retry_interval == number


def test_settings_class_is_the_root():
    assert isinstance(load(), Settings)


# --- the keruta task pod's conventions -------------------------------------------------


@pytest.mark.parametrize("given, effective", [
    ("http://keruta-svc.ns.svc.cluster.local", "http://keruta-svc.ns.svc.cluster.local/api/v1"),
    ("http://keruta-svc:8080/", "http://keruta-svc:8080/api/v1"),
    ("https://keruta.example/custom/v2", "https://keruta.example/custom/v2"),
])
def test_a_host_only_api_url_gets_the_api_path(given, effective):
    assert load_settings((), None, {"KERUTA_API_URL": given}).api.url == effective


@pytest.mark.parametrize("api_url, websocket_url", [
    ("http://keruta-svc.ns.svc.cluster.local", "ws://keruta-svc.ns.svc.cluster.local/ws/tasks"),
    ("https://keruta.example:8443/api/v1", "wss://keruta.example:8443/ws/tasks"),
])
def test_an_unset_websocket_url_is_derived_from_the_api_host(api_url, websocket_url):
    assert load_settings((), None, {"KERUTA_API_URL": api_url}).websocket.url == websocket_url
    explicit = {"KERUTA_API_URL": api_url, "KERUTA_WEBSOCKET_URL": "ws://elsewhere/ws/tasks"}
    assert load_settings((), None, explicit).websocket.url == "ws://elsewhere/ws/tasks"


def test_the_pods_token_variable_is_read_and_the_documented_name_wins():
    assert load_settings((), None, {"KERUTA_API_TOKEN": "pod-token"}).auth.token == "pod-token"
    both = {"KERUTA_API_TOKEN": "pod-token", "KERUTA_AUTH_TOKEN": "own-token"}
    assert load_settings((), None, both).auth.token == "own-token"
    nested = dict(both, KERUTA_AUTH__TOKEN="nested-token")
    assert load_settings((), None, nested).auth.token == "nested-token"
