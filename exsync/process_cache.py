"""A few seconds of memory in one process, for small tables read by every notice sent.

The admins' notice wordings and the helpdesk's instructions change rarely and are read for
every message; a worker sending hundreds a second would otherwise query them each time. A
change is seen at once in the process that made it (the model's save and delete clear it) and
within `ttl` seconds in the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class ProcessCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._values: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        found = self._values.get(key)
        if found is not None and now - found[0] < self.ttl:
            return found[1]
        value = load()
        self._values[key] = (now, value)
        return value

    def clear(self, *args: object, **kwargs: object) -> None:
        """Forget everything (also a signal receiver: any arguments)."""
        self._values.clear()
