"""Log lines: text for a terminal, or one JSON object per line for a log pipeline (`CHOWDER_LOG_FORMAT=json`),
each with the request id of the request it belongs to (`core/actors.py`) and the fields its call site gave
(`extra=`: an access line's method, route, status and duration)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from chowder.core.actors import current_actor

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What `extra=` may add to a JSON line (the attributes every LogRecord has are not fields).
FIELDS = ("method", "route", "path", "status", "duration_ms", "instance_id")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := current_actor().request_id:
            entry["request_id"] = request_id
        entry |= {field: getattr(record, field) for field in FIELDS if hasattr(record, field)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str) -> None:
    """Also leaves out of every record what neither format prints (the logging HOWTO's "Optimization"): where
    the call was made from, and the thread's and process's ids and names. Gathering them was half of an access
    line's cost, one per request."""
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
