"""The agent's own log (not the child's lines): format, destination, masking.

Actors log through Thespian, which forwards records to its logger process;
that process builds its handlers from the dictConfig made here, so formatter
and filter are referenced by import path.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

MASK = "****"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class MaskSecrets(logging.Filter):
    """Replaces the configured credentials wherever they appear in a message."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, MASK)
            record.msg, record.args = message, None
        return True


def log_config(settings) -> dict:
    """dictConfig for the agent's log, from `settings.logging` and the secrets."""
    logging_settings = settings.logging
    formatter = (
        {"()": "keruta_actors.logsetup.JsonFormatter"}
        if logging_settings.format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    stream = "ext://sys.stderr" if logging_settings.output == "stderr" else "ext://sys.stdout"
    handler = {"class": "logging.StreamHandler", "stream": stream}
    if logging_settings.output == "file" or logging_settings.file.enabled:
        handler = {"class": "logging.FileHandler", "filename": logging_settings.file.path}
    secrets = tuple(secret for secret in (settings.auth.token, settings.auth.api_key) if secret)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"agent": formatter},
        "filters": {"secrets": {"()": "keruta_actors.logsetup.MaskSecrets", "secrets": secrets}},
        "handlers": {"agent": {**handler, "formatter": "agent", "filters": ["secrets"]}},
        "loggers": {"keruta_actors": {"level": python_level(logging_settings.level), "handlers": ["agent"]}},
        "root": {"level": "WARNING", "handlers": []},
    }


def python_level(level: str) -> str:
    return "WARNING" if level.upper() == "WARN" else level.upper()
