"""Memos of values derived from one (frozen) stack model.

A fleet of hundreds of hosts should not derive the same per-role or
per-stack value hundreds of times. Models are frozen, so one object always
derives the same; entries are keyed by the object's identity and hold the
object itself, so an id is never reused by another model while its entry
exists. Only the last few stacks are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

_KEPT = 4


class StackMemo:
    """Values derived from a stack, by (stack identity, key)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, tuple[Any, dict[Hashable, Any]]] = OrderedDict()

    def get(self, stack: Any, key: Hashable, derive: Callable[[], Any]) -> Any:
        entry = self._entries.get(id(stack))
        if entry is None or entry[0] is not stack:
            entry = (stack, {})
            self._entries[id(stack)] = entry
            while len(self._entries) > _KEPT:
                self._entries.popitem(last=False)
        values = entry[1]
        if key not in values:
            values[key] = derive()
        return values[key]
