"""What keeps a local web server local: the refusals of ``d3os ui``, as one pure decision per request.

- the Host header must name this server (127.0.0.1, localhost or the bound address, with its port): a page of
  another site whose name was pointed at 127.0.0.1 (DNS rebinding) sends its own name and is refused;
- every request carries the token printed in the URL (as a query parameter once; the answer sets it as a
  cookie for this port, and the page repeats it in a header);
- a request that changes something (any method but GET and HEAD) carries the token in the header and comes
  from this very origin (the browser's ``Origin``): a form or script on another site cannot forge one.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_HEADER = "x-d3os-token"
TOKEN_QUERY = "token"
SAFE_METHODS = frozenset({"GET", "HEAD"})


def new_token() -> str:
    """A random token (32 bytes) for one run of ``d3os ui``."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Guard:
    token: str
    hosts: frozenset[str]
    """Host header values this server answers to (``127.0.0.1:8765``, ``localhost:8765``)."""
    origins: frozenset[str]
    """Origins a state-changing request may come from (``http://127.0.0.1:8765``, ...)."""

    @classmethod
    def for_address(cls, token: str, address: str, port: int) -> Guard:
        names = {address, "127.0.0.1", "localhost"}
        hosts = {f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names}
        return cls(token, frozenset(hosts), frozenset(f"http://{h}" for h in hosts))

    @property
    def cookie(self) -> str:
        """The cookie's name: cookies ignore ports, so each server's carries its own."""
        port = next(iter(self.hosts)).rsplit(":", 1)[1]
        return f"d3os-ui-{port}"

    def _is_token(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    def check(self, method: str, headers: Mapping[str, str], query: Mapping[str, str],
              cookies: Mapping[str, str]) -> Refusal | None:
        """None when the request may go on, else why not (``headers``: lower-case names)."""
        host = headers.get("host", "")
        if host not in self.hosts:
            return Refusal(403, f"Host {host or '(none)'} refused: this server answers to "
                                f"{', '.join(sorted(self.hosts))} only (DNS rebinding protection)")
        if method.upper() in SAFE_METHODS:
            if any(self._is_token(v) for v in (query.get(TOKEN_QUERY), cookies.get(self.cookie),
                                               headers.get(TOKEN_HEADER))):
                return None
            return Refusal(403, "token missing or wrong: open the URL `d3os ui` printed (it carries ?token=)")
        if not self._is_token(headers.get(TOKEN_HEADER)):
            return Refusal(403, f"a change needs the token in the {TOKEN_HEADER} header")
        origin = headers.get("origin")
        if origin not in self.origins:
            return Refusal(403, f"cross-origin request refused (Origin {origin or '(none)'})")
        return None
