"""Configuration: read every source, check every value, hand out frozen settings.

The only module that imports dynaconf (STYLE habit 8). Sources, low to high:

    1. keruta_actors/settings.toml         every default, read by dynaconf
    2. KERUTA_CONFIG files, then --config   YAML, JSON or TOML, read by dynaconf
    3. the design document's variables      KERUTA_LOG_BATCH_SIZE, KERUTA_AUTH_TOKEN, ...
    4. nested variables                     KERUTA_WEBSOCKET__HEARTBEATINTERVAL=10s
    5. overrides from command-line flags    {"logging.level": "DEBUG"}

Each source becomes a nested dict whose keys are spelled as in the schema
(matched ignoring case, `_` and `-`: dynaconf upper-cases top-level keys and
environment names are upper case), and the dicts are merged: mappings key by
key, lists and values replaced whole. Environment values are typed by
dynaconf's parser ("10" is 10, "true" is True, "30s" stays a string), except
that string settings take the text verbatim, so a numeric token stays a string.
A `null` (an empty YAML value), an empty variable and a None override all mean
"not set here".

Why not dynaconf's own environment loader and merge: it reads `os.environ`
directly (callers pass `environ`), its merge appends lists (a file's
`excludePatterns` must replace the defaults, not extend them), it skips a
missing file silently, and it also loads any `<name>.local.<ext>` beside a file.

The merged dict is checked against the dataclasses below; each field's
metadata holds its check. Every problem becomes one line of ConfigError.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from dataclasses import Field, dataclass, field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    get_args,
    get_origin,
    get_type_hints,
)
from urllib.parse import urlsplit

from dynaconf import Dynaconf
from dynaconf.loaders import json_loader, toml_loader, yaml_loader
from dynaconf.utils.parse_conf import boolean_fix, parse_conf_data

from keruta_actors.endpoints import clear_text_refusal, tls_forced
from keruta_actors.errors import KerutaError
from keruta_actors.policy.alerts import SEVERITIES
from keruta_actors.policy.conditions import parse_condition
from keruta_actors.units import parse_cron, parse_duration, parse_size

DEFAULTS_FILE = Path(__file__).with_name("settings.toml")


class ConfigError(KerutaError):
    """Bad configuration. `problems` has one line per problem, each naming the
    key path (or file, or variable) and the offending value."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(self.problems)  # args stay (problems,), so it pickles

    def __str__(self) -> str:
        return "\n".join(self.problems)


# --- checks: each turns a raw value into the setting's type or raises ValueError


class _Invalid(ValueError):
    """Several problems inside one value, as (path suffix, message) pairs."""

    def __init__(self, *items: tuple[str, str]) -> None:
        super().__init__(items)
        self.items = items


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _expected(what: str, value: Any) -> ValueError:
    return ValueError(f"expected {what}, got {_show(value)}")


def _integer(low: int, high: int | None = None) -> Callable:
    what = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def check(value: Any) -> int:
        is_digits = isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)
        number = int(value) if is_digits else value
        if isinstance(number, bool) or not isinstance(number, int) \
                or number < low or (high is not None and number > high):
            raise _expected(what, value)
        return number

    return check


def _number(low: float) -> Callable:
    def check(value: Any) -> float:
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, bool) or not isinstance(number, (int, float)) \
                or not math.isfinite(number) or number < low:
            raise _expected(f"a number >= {low:g}", value)
        return float(number)

    return check


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True,
             "false": False, "no": False, "off": False, "0": False}


def _boolean(value: Any) -> bool:
    # 1/0 too: dynaconf types the variable text "1" as the integer 1.
    key = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if key not in _BOOLEANS:
        raise _expected("true or false", value)
    return _BOOLEANS[key]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _expected("a string", value)
    return value


def _required_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _expected("a non-empty string", value)
    return value.strip()


def _secret(value: Any) -> str:
    if not isinstance(value, str):  # the value is never shown: it may be the secret
        raise ValueError(f"expected a string, got {type(value).__name__} (value not shown)")
    return value


def _choice(*options: str, aliases: Mapping[str, str] | None = None) -> Callable:
    table = {o.lower(): o for o in options} | {a.lower(): o for a, o in (aliases or {}).items()}
    listing = ", ".join(repr(o) for o in options)

    def check(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in table:
            raise _expected(f"one of {listing}", value)
        return table[value.strip().lower()]

    return check


_LEVEL = _choice("DEBUG", "INFO", "WARN", "ERROR", aliases={"WARNING": "WARN"})


def _duration(positive: bool = False) -> Callable:
    what = ("a duration > 0" if positive else "a duration") + \
        " such as '500ms', '1s', '5m', '2h', '30d' or a number of seconds"

    def check(value: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise _expected(what, value) from None
        if positive and seconds == 0:
            raise _expected(what, value)
        return seconds

    return check


def _size(value: Any) -> int:
    try:
        size = parse_size(value)
    except ValueError:
        size = 0
    if size < 1:
        raise _expected("a size > 0 such as '512KB', '100MB', '10GB' or a number of bytes", value)
    return size


def _mask_url(url: str) -> str:
    """The URL with any password in it replaced by ****."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        userinfo, host = parts.netloc.rsplit("@", 1)
        return parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:****@{host}").geturl()
    except ValueError:
        return url


def _url(*schemes: str, optional: bool = False) -> Callable:
    # The agent appends paths ({url}/{taskId}), hence no query, no fragment,
    # and no trailing slash.
    what = "a " + " or ".join(f"{s}://" for s in schemes) + " URL with a host and no query"

    def check(value: Any) -> str:
        if optional and value == "":
            return ""
        try:
            parts = urlsplit(value.strip())
            parts.port  # raises ValueError on a bad port
            plain = not parts.query and not parts.fragment
            if parts.scheme.lower() in schemes and parts.hostname and plain:
                return value.strip().rstrip("/")
        except (AttributeError, TypeError, ValueError):
            pass
        raise _expected(what, _mask_url(value) if isinstance(value, str) else value)

    return check


API_PATH = "/api/v1"


def _api_url(value: Any) -> str:
    """An http(s) URL; a bare host (as keruta's task pods set KERUTA_API_URL)
    gets the API's path, `/api/v1`."""
    url = _url("http", "https")(value)
    return url + API_PATH if not urlsplit(url).path else url


def derived_websocket_url(api_url: str) -> str:
    """The log WebSocket on the API's host: ws:// beside http://, wss:// beside https://."""
    parts = urlsplit(api_url)
    scheme = "wss" if parts.scheme.lower() == "https" else "ws"
    return f"{scheme}://{parts.netloc}/ws/tasks"


def _host(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        if re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", text):
            return text
    raise _expected("an IP address or host name", value)


def _items(value: Any, what: str) -> list:
    # A single string is accepted as a one-item list: the natural way to set
    # a list from one environment variable.
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise _expected(what, value)
    return list(value)


def _patterns(value: Any) -> tuple[str, ...]:
    problems = []
    items = _items(value, "a list of regular expressions")
    for index, pattern in enumerate(items):
        if not isinstance(pattern, str):
            problems.append((f"[{index}]", f"expected a regular expression, got {_show(pattern)}"))
            continue
        try:
            re.compile(pattern)
        except re.error as error:
            problems.append((f"[{index}]", f"invalid regex {pattern!r}: {error}"))
    if problems:
        raise _Invalid(*problems)
    return tuple(items)


METRIC_NAMES = ("logCount", "errorRate", "latency", "memoryUsage")


def _metric_names(value: Any) -> tuple[str, ...]:
    problems = []
    items = _items(value, "a list of metric names")
    for index, name in enumerate(items):
        if name not in METRIC_NAMES:
            close = difflib.get_close_matches(str(name), METRIC_NAMES, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"one of {METRIC_NAMES}"
            problems.append((f"[{index}]", f"unknown metric {_show(name)} ({hint})"))
    if problems:
        raise _Invalid(*problems)
    return tuple(items)


def _cron(value: Any) -> str:
    parse_cron(value)  # its ValueError names the expression and the bad field
    return value.strip()


def _condition(value: Any) -> str:
    parse_condition(value)  # its ConditionError (a ValueError) says what is wrong and how to fix it
    return value.strip()


def _setting(check: Callable, key: str = "", secret: bool = False) -> Any:
    """A leaf setting: its check, and its key when camelCase can't be derived."""
    return field(metadata={"check": check, "key": key, "secret": secret})


# --- the schema: attribute names in snake_case, keys in camelCase -------------


@dataclass(frozen=True, slots=True)
class Performance:
    max_concurrent_streams: int = _setting(_integer(1))
    rate_limit_per_second: float = _setting(_number(0))  # 0 = unlimited
    rate_limit_per_task: float = _setting(_number(0))
    rate_limit_per_source: float = _setting(_number(0))
    memory_limit_mb: int = _setting(_integer(16), key="memoryLimitMB")
    on_rate_limit: str = _setting(_choice("delay", "drop"))


@dataclass(frozen=True, slots=True)
class Filters:
    exclude_patterns: tuple[str, ...] = _setting(_patterns)
    include_patterns: tuple[str, ...] = _setting(_patterns)
    max_message_length: int = _setting(_integer(1))


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    max_size: int = _setting(_size)
    segment_size: int = _setting(_size)
    fsync: str = _setting(_choice("never", "interval", "always"))
    fsync_interval: float = _setting(_duration(positive=True))
    # last, with a default: code and tests that build SpoolSettings need not name it
    enabled: bool = field(default=True, metadata={"check": _boolean, "key": "", "secret": False})


@dataclass(frozen=True, slots=True)
class LogStreaming:
    enabled: bool = _setting(_boolean)
    buffer_size: int = _setting(_integer(1))
    batch_size: int = _setting(_integer(1))
    flush_interval: float = _setting(_duration())
    max_retries: int = _setting(_integer(0))
    retry_interval: float = _setting(_duration())
    level: str = _setting(_LEVEL)
    drain_timeout: float = _setting(_duration())
    partial_line_timeout: float = _setting(_duration())
    state_dir: str = _setting(_text)
    performance: Performance
    filters: Filters
    spool: SpoolSettings


@dataclass(frozen=True, slots=True)
class Security:
    enable_ssl: bool = _setting(_boolean, key="enableSSL")
    verify_cert: bool = _setting(_boolean)
    cert_path: str = _setting(_text)


@dataclass(frozen=True, slots=True)
class WebSocket:
    url: str = _setting(_url("ws", "wss", optional=True))  # "" = derived from api.url
    timeout: float = _setting(_duration(positive=True))
    reconnect_interval: float = _setting(_duration(positive=True))
    max_reconnect_attempts: int = _setting(_integer(0))
    heartbeat_interval: float = _setting(_duration(positive=True))
    security: Security


@dataclass(frozen=True, slots=True)
class ApiRateLimit:
    requests_per_minute: int = _setting(_integer(0))  # 0 = unlimited
    burst_size: int = _setting(_integer(1))


@dataclass(frozen=True, slots=True)
class Api:
    url: str = _setting(_api_url)
    timeout: float = _setting(_duration(positive=True))
    retry_count: int = _setting(_integer(0))
    retry_interval: float = _setting(_duration())
    rate_limit: ApiRateLimit


@dataclass(frozen=True, slots=True)
class Auth:
    token: str = _setting(_secret, secret=True)
    api_key: str = _setting(_secret, secret=True)
    type: str = _setting(_choice("bearer", "api-key", aliases={"apikey": "api-key"}))
    # keruta deploys its API on plain HTTP inside the cluster; sending a
    # credential there is a choice the user must make by name.
    allow_clear_text_credentials: bool = _setting(_boolean)


@dataclass(frozen=True, slots=True)
class LogFile:
    enabled: bool = _setting(_boolean)
    path: str = _setting(_text)
    max_size: int = _setting(_size)
    max_backups: int = _setting(_integer(0))
    max_age: float = _setting(_duration())
    compress: bool = _setting(_boolean)
    format: str = _setting(_choice("", "json", "text"))  # "" = logging.format


@dataclass(frozen=True, slots=True)
class Logging:
    level: str = _setting(_LEVEL)
    format: str = _setting(_choice("json", "text"))
    output: str = _setting(_choice("stdout", "stderr", "file"))
    file: LogFile


@dataclass(frozen=True, slots=True)
class Prometheus:
    enabled: bool = _setting(_boolean)
    port: int = _setting(_integer(1, 65535))


@dataclass(frozen=True, slots=True)
class HealthChecks:
    interval: float = _setting(_duration(positive=True))  # how often the checks run
    timeout: float = _setting(_duration(positive=True))  # the API check's own
    liveness_timeout: float = _setting(_duration(positive=True))  # actors silent this long: /livez is 503


@dataclass(frozen=True, slots=True)
class Monitoring:
    enabled: bool = _setting(_boolean)
    bind_address: str = _setting(_host)
    metrics: tuple[str, ...] = _setting(_metric_names)
    prometheus: Prometheus
    health: HealthChecks


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str = _setting(_required_text)
    condition: str = _setting(_condition)
    duration: float = _setting(_duration())
    severity: str = _setting(_choice(*SEVERITIES))


@dataclass(frozen=True, slots=True)
class Alerting:
    webhook_url: str = _setting(_url("http", "https", optional=True))  # Alertmanager; "" = none
    timeout: float = _setting(_duration(positive=True))
    evaluation_interval: float = _setting(_duration(positive=True))


@dataclass(frozen=True, slots=True)
class Retention:
    days: int = _setting(_integer(1))
    max_size: int = _setting(_size)


@dataclass(frozen=True, slots=True)
class Storage:
    type: str = _setting(_choice("s3", "local"))
    bucket: str = _setting(_text)
    region: str = _setting(_text)
    endpoint: str = _setting(_url("http", "https", optional=True))
    path: str = _setting(_text)  # local: the directory; s3: a key prefix


@dataclass(frozen=True, slots=True)
class Backup:
    enabled: bool = _setting(_boolean)
    schedule: str = _setting(_cron)
    retention: Retention
    storage: Storage


@dataclass(frozen=True, slots=True)
class Pprof:
    enabled: bool = _setting(_boolean)
    port: int = _setting(_integer(1, 65535))


@dataclass(frozen=True, slots=True)
class Trace:
    enabled: bool = _setting(_boolean)
    output: str = _setting(_text)


@dataclass(frozen=True, slots=True)
class Debug:
    enabled: bool = _setting(_boolean)
    level: str = _setting(_LEVEL)
    pprof: Pprof
    trace: Trace


@dataclass(frozen=True, slots=True)
class Settings:
    log_streaming: LogStreaming
    websocket: WebSocket
    api: Api
    auth: Auth
    logging: Logging
    monitoring: Monitoring
    alerts: tuple[AlertRule, ...]
    alerting: Alerting
    backup: Backup
    debug: Debug


# --- schema walking --------------------------------------------------------------


def _norm(key: object) -> str:
    return str(key).replace("_", "").replace("-", "").lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@cache
def _schema(cls: type) -> dict[str, tuple[str, Field, Any]]:
    """normalised key -> (camelCase key, field, resolved type), in field order."""
    hints = get_type_hints(cls)
    schema = {}
    for f in fields(cls):
        key = f.metadata.get("key") or _camel(f.name)
        schema[_norm(key)] = (key, f, hints[f.name])
    return schema


def _nested(tp: Any) -> type | None:
    """The dataclass a field holds, alone or as tuple items; None for a leaf."""
    if is_dataclass(tp):
        return tp
    args = get_args(tp)
    return args[0] if get_origin(tp) is tuple and args and is_dataclass(args[0]) else None


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _unknown(where: str, key: object, cls: type) -> str:
    known = {_norm(k): k for k, _, _ in _schema(cls).values()}
    close = difflib.get_close_matches(_norm(key), known, n=1)
    hint = f"did you mean {known[close[0]]!r}?" if close else f"known keys: {', '.join(known.values())}"
    return f"{where}: unknown key ({hint})"


def _canonical(raw: Any, cls: type, path: str, problems: list[str]) -> Any:
    """`raw` with keys spelled as in the schema; unknown keys reported and
    dropped, None values dropped. Non-mappings are left for `_build` to report."""
    if not isinstance(raw, Mapping):
        return raw
    out = {}
    for key, value in raw.items():
        entry = _schema(cls).get(_norm(key))
        if entry is None:
            problems.append(_unknown(_join(path, key), key, cls))
            continue
        if value is None:
            continue
        name, _, tp = entry
        inner, where = _nested(tp), _join(path, name)
        if inner is not None and is_dataclass(tp):
            value = _canonical(value, inner, where, problems)
        elif inner is not None and isinstance(value, (list, tuple)):
            value = [_canonical(item, inner, f"{where}[{i}]", problems)
                     for i, item in enumerate(value)]
        out[name] = value
    return out


def _merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; anything else in `over` replaces `base`."""
    if not (isinstance(base, Mapping) and isinstance(over, Mapping)):
        return over
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(base[key], value) if key in base else value
    return merged


def _build(cls: type, raw: Any, path: str, problems: list[str]) -> Any:
    if not isinstance(raw, Mapping):
        where = path or "configuration"
        problems.append(f"{where}: expected a mapping of settings, got {_show(raw)}")
        return None
    values = {}
    for key, f, tp in _schema(cls).values():
        where = _join(path, key)
        if key not in raw:
            problems.append(f"{where}: missing")
            values[f.name] = None
        else:
            values[f.name] = _value(f, tp, raw[key], where, problems)
    return cls(**values)


def _value(f: Field, tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    inner = _nested(tp)
    if inner is not None and is_dataclass(tp):
        return _build(inner, value, path, problems)
    if inner is not None:
        if not isinstance(value, (list, tuple)):
            problems.append(f"{path}: expected a list, got {_show(value)}")
            return None
        return tuple(_build(inner, item, f"{path}[{i}]", problems) for i, item in enumerate(value))
    try:
        return f.metadata["check"](value)
    except _Invalid as error:
        problems.extend(f"{path}{suffix}: {message}" for suffix, message in error.items)
    except ValueError as error:
        problems.append(f"{path}: {error}")
    return None


def _resolve(parts: Sequence[str], label: str, problems: list[str]) -> tuple[list[str], Any] | None:
    """The schema's key names along a path given as parts, and the type at its end."""
    node: Any = Settings
    names: list[str] = []
    for part in parts:
        if not is_dataclass(node):
            problems.append(f"{label}: {'.'.join(names)!r} has no keys below it")
            return None
        entry = _schema(node).get(_norm(part))
        if entry is None:
            where = ".".join([*names, part])
            problems.append(_unknown(where if where == label else f"{label} ({where})", part, node))
            return None
        names.append(entry[0])
        node = entry[2]
    return names, node


def _tree(names: Sequence[str], value: Any) -> dict:
    for name in reversed(names):
        value = {name: value}
    return value


# --- sources -----------------------------------------------------------------------

# The design document's variables; any other key is KERUTA_SECTION__KEY.
ENV_VARS = {
    "KERUTA_LOG_STREAMING_ENABLED": "logStreaming.enabled",
    "KERUTA_LOG_BUFFER_SIZE": "logStreaming.bufferSize",
    "KERUTA_LOG_BATCH_SIZE": "logStreaming.batchSize",
    "KERUTA_LOG_FLUSH_INTERVAL": "logStreaming.flushInterval",
    "KERUTA_LOG_LEVEL": "logStreaming.level",
    "KERUTA_WEBSOCKET_URL": "websocket.url",
    "KERUTA_WEBSOCKET_TIMEOUT": "websocket.timeout",
    "KERUTA_WEBSOCKET_RECONNECT_INTERVAL": "websocket.reconnectInterval",
    "KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS": "websocket.maxReconnectAttempts",
    "KERUTA_API_URL": "api.url",
    "KERUTA_API_TIMEOUT": "api.timeout",
    "KERUTA_API_RETRY_COUNT": "api.retryCount",
    "KERUTA_API_RETRY_INTERVAL": "api.retryInterval",
    "KERUTA_AUTH_TOKEN": "auth.token",
    "KERUTA_API_KEY": "auth.apiKey",
    "KERUTA_AUTH_TYPE": "auth.type",
}
# Names other agents' deployments set (keruta's task pods set KERUTA_API_TOKEN
# for the Go agent). The documented name wins over an alias when both are set.
ENV_ALIASES = {
    "KERUTA_API_TOKEN": "auth.token",
}
CONFIG_ENV_VAR = "KERUTA_CONFIG"

_FILE_LOADERS = {
    ".yaml": yaml_loader, ".yml": yaml_loader, ".json": json_loader, ".toml": toml_loader,
}


def _reader() -> Dynaconf:
    # An empty dynaconf instance that reads only what it is given: no
    # settings files, no environment, no environments.
    return Dynaconf(
        settings_files=[], environments=False, envvar_prefix=None, loaders=[], core_loaders=[]
    )


def _read_file(path: str, problems: list[str]) -> dict:
    """One config file as a nested dict, read by dynaconf's loader for its type."""
    loader = _FILE_LOADERS.get(os.path.splitext(path)[1].lower())
    if loader is None:
        problems.append(f"{path}: unsupported config file type (expected .yaml, .yml, .json or .toml)")
        return {}
    try:
        with open(path, "rb"):  # dynaconf would only warn about a missing file
            pass
        reader = _reader()
        loader.load(reader, filename=os.path.abspath(path), silent=False)
        return reader.as_dict()
    except OSError as error:
        problems.append(f"{path}: cannot read: {error.strerror or error}")
    except AttributeError:  # dynaconf calls .get on the document
        problems.append(f"{path}: expected a mapping of sections at the top level")
    except Exception as error:  # each format's parser raises its own errors
        problems.append(f"{path}: cannot parse: {' '.join(str(error).split())}")
    return {}


def config_file_paths(config_files: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """KERUTA_CONFIG's files (separated by os.pathsep or commas), then `config_files`."""
    listed = re.split(f"[,{re.escape(os.pathsep)}]", environ.get(CONFIG_ENV_VAR, ""))
    return [p.strip() for p in listed if p.strip()] + [os.fspath(p) for p in config_files]


def _env_trees(environ: Mapping[str, str], problems: list[str]) -> list[dict]:
    """Aliases, the design document's variables, then the nested ones: three
    trees, lowest precedence first, the more specific form winning."""
    trees: list[dict] = [{}, {}, {}]
    reader = _reader()
    for name, text in sorted(environ.items()):
        if not name.startswith("KERUTA_") or name == CONFIG_ENV_VAR or not text:
            continue  # an empty variable (KEY= in a compose file) means "not set"
        named = ENV_ALIASES.get(name) or ENV_VARS.get(name)
        rank = 0 if name in ENV_ALIASES else 1 if name in ENV_VARS else 2
        if named:
            resolved = _resolve(named.split("."), name, problems)
        elif "__" in name or _norm(name[len("KERUTA_"):]) in _schema(Settings):
            # KERUTA_SECTION__KEY, or a whole section: KERUTA_ALERTS='[{...}]'
            resolved = _resolve(name[len("KERUTA_"):].split("__"), name, problems)
        else:
            # Not every KERUTA_ variable is a setting (KERUTA_TASK_ID is not);
            # only a near miss of a documented name is worth reporting.
            close = difflib.get_close_matches(name, ENV_VARS, n=1, cutoff=0.9)
            if close:
                problems.append(f"{name}: not a known variable (did you mean {close[0]}?)")
            continue
        if resolved is None:
            continue
        names, tp = resolved
        try:
            value = text if tp is str else parse_conf_data(
                boolean_fix(text), tomlfy=True, box_settings=reader)
        except Exception as error:  # dynaconf's parser: TOML errors, @-markers
            problems.append(f"{name}: cannot parse {_show(text)}: {error}")
            continue
        trees[rank] = _merge(trees[rank], _tree(names, value))
    return trees


def _override_tree(overrides: Mapping[str, object], problems: list[str]) -> dict:
    tree: dict = {}
    for key, value in overrides.items():
        resolved = _resolve(key.split("."), key, problems) if value is not None else None
        if resolved is not None:
            tree = _merge(tree, _tree(resolved[0], value))
    return tree


def _sources(config_files: Sequence[str], overrides: Mapping[str, object],
             environ: Mapping[str, str], problems: list[str]) -> Iterator[dict]:
    """Every source's tree, lowest precedence first; lazily, so that problems
    are listed in the order of the sources."""
    yield _read_file(str(DEFAULTS_FILE), problems)
    for path in config_file_paths(config_files, environ):
        yield _read_file(path, problems)
    yield from _env_trees(environ, problems)
    yield _override_tree(overrides, problems)


# --- the API -----------------------------------------------------------------------------


def load_settings(
    config_files: Sequence[str] = (),
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The effective settings, or ConfigError listing every problem found.

    `overrides` maps dotted camelCase keys (or sections, to mappings) to values;
    a None value means "flag not given"."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    merged: dict = {}
    for tree in _sources(config_files, overrides or {}, environ, problems):
        merged = _merge(merged, _canonical(tree, Settings, "", problems))
    settings = _build(Settings, merged, "", problems)
    if not problems:  # checks relating two settings need each to be valid first
        settings = _with_derived(settings)
        problems += _cross_problems(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def validate_only(
    config_files: Sequence[str] = (),
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Warnings for a valid configuration (for `config check`); ConfigError if invalid."""
    return config_warnings(load_settings(config_files, overrides, environ))


def settings_to_dict(settings: Any) -> dict:
    """The settings as a nested camelCase dict; durations in seconds, sizes in
    bytes. `load_settings(overrides=settings_to_dict(s)) == s`."""
    return _to_dict(settings, lambda f, value: value)


def masked_dict(settings: Settings) -> dict:
    """`settings_to_dict`, with secrets and passwords in URLs masked."""
    def mask(f: Field, value: Any) -> Any:
        if f.metadata.get("secret"):
            return mask_secret(value)
        return _mask_url(value) if isinstance(value, str) and "://" in value else value
    return _to_dict(settings, mask)


def mask_secret(secret: str) -> str:
    """'' stays '' (shows it is unset); a long secret keeps its last 4
    characters, so two can be told apart; a short one shows nothing."""
    if not secret:
        return ""
    return "****" + secret[-4:] if len(secret) > 12 else "****"


def _to_dict(obj: Any, leaf: Callable[[Field, Any], Any]) -> dict:
    out: dict = {}
    for key, f, _ in _schema(type(obj)).values():
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out[key] = _to_dict(value, leaf)
        elif isinstance(value, tuple):
            out[key] = [_to_dict(v, leaf) if is_dataclass(v) else leaf(f, v) for v in value]
        else:
            out[key] = leaf(f, value)
    return out


def _with_derived(s: Settings) -> Settings:
    """Settings whose value follows from another when left unset."""
    if s.websocket.url:
        return s
    return replace(s, websocket=replace(s.websocket, url=derived_websocket_url(s.api.url)))


def _cross_problems(s: Settings) -> list[str]:
    problems = []
    log_file = s.logging.file
    if (s.logging.output == "file" or log_file.enabled) and not log_file.path.strip():
        problems.append("logging.file.path: required when logging.output is 'file' or "
                        "logging.file.enabled is true, got ''")
    spool = s.log_streaming.spool
    if spool.segment_size > spool.max_size:
        problems.append(f"logStreaming.spool.segmentSize: {spool.segment_size} bytes is larger than "
                        f"logStreaming.spool.maxSize ({spool.max_size} bytes)")
    names = [rule.name for rule in s.alerts]
    problems += [f"alerts: rule name {n!r} is used more than once" for n in sorted(set(names))
                 if names.count(n) > 1]
    storage = s.backup.storage
    if s.backup.enabled and storage.type == "s3" and not storage.bucket.strip():
        problems.append("backup.storage.bucket: required for storage type 's3', got ''")
    if s.backup.enabled and storage.type == "local" and not storage.path.strip():
        problems.append("backup.storage.path: required for storage type 'local', got ''")
    debug = s.debug
    if debug.enabled and debug.trace.enabled and not debug.trace.output.strip():
        problems.append("debug.trace.output: required when debug.trace.enabled is true, got ''")
    if debug.enabled and debug.pprof.enabled and s.monitoring.enabled \
            and debug.pprof.port == s.monitoring.prometheus.port:
        problems.append(f"debug.pprof.port: {debug.pprof.port} is also monitoring.prometheus.port; "
                        "the two servers need different ports")
    return problems


def config_warnings(s: Settings) -> list[str]:
    """What `config check` reports without failing (SPEC §10: clear-text
    credentials are refused at connect time, only warned about here)."""
    warnings = []
    security = s.websocket.security
    ws_tls = tls_forced(s.websocket.url, security.enable_ssl).startswith("wss:")
    has_credentials = bool(s.auth.token or s.auth.api_key)
    for key, url in (("websocket.url", s.websocket.url), ("api.url", s.api.url)):
        url = tls_forced(url, security.enable_ssl)
        refusal = clear_text_refusal(url, has_credentials, s.auth.allow_clear_text_credentials)
        if refusal:
            warnings.append(f"{key}: {refusal}; the agent will refuse to connect")
    if s.auth.type == "bearer" and not s.auth.token and s.auth.api_key:
        warnings.append("auth.type: 'bearer' but only auth.apiKey is set; no credential will be sent")
    if s.auth.type == "api-key" and not s.auth.api_key and s.auth.token:
        warnings.append("auth.type: 'api-key' but only auth.token is set; no credential will be sent")
    if ws_tls and security.cert_path and not os.path.isfile(security.cert_path):
        warnings.append(f"websocket.security.certPath: no such file {security.cert_path!r}")
    if ws_tls and not security.verify_cert:
        warnings.append(
            "websocket.security.verifyCert: false; the server's certificate will not be checked")
    if s.log_streaming.batch_size > s.log_streaming.buffer_size:
        warnings.append(f"logStreaming.batchSize: {s.log_streaming.batch_size} is larger than "
                        f"logStreaming.bufferSize {s.log_streaming.buffer_size}")
    return warnings
