"""Structured logs: one line per action, naming the DataService (``ds=namespace/name``).

``text`` renders ``TIME LEVEL logger: message key=value ...``; ``json`` renders one JSON object per line
with the same keys. Fields are passed with ``extra={...}``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from d3os_core.redact import redact_text

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: redact_text(v) if isinstance(v, str) else v
        for k, v in vars(record).items()
        if k not in _STANDARD and not k.startswith("_")
    }


def _message(record: logging.LogRecord) -> str:
    """The message with any URL's ``user:password@`` masked (a check's URL may carry one)."""
    return redact_text(record.getMessage())


def _time(record: logging.LogRecord) -> str:
    t = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _fmt_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    if not s or any(c.isspace() for c in s) or '"' in s or "=" in s:
        return json.dumps(s, ensure_ascii=False)
    return s


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _time(record),
            f"{record.levelname:<7}",
            f"{record.name.removeprefix('d3os_operator.')}:",
            _message(record),
        ]
        parts += [f"{k}={_fmt_value(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = redact_text(self.formatException(record.exc_info))
        try:
            return json.dumps(out, ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # e.g. a dict with tuple keys: never lose the line
            return json.dumps(
                {k: v if isinstance(v, (str, int, float, bool)) or v is None else repr(v) for k, v in out.items()},
                ensure_ascii=False,
            )


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger for the operator (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_d3os", False):
            root.removeHandler(h)
    handler._d3os = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # the HTTP stack logs every request at INFO/DEBUG: keep it quiet unless asked for
    for noisy in ("httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level.lower() != "debug" else logging.INFO)
