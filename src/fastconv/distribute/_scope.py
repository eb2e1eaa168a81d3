"""The strategy a model compiled inside ``strategy.scope()`` trains with.

Kept apart from the MPI code so that the trainer can ask for the current
strategy without importing mpi4py.
"""

from __future__ import annotations

from typing import Any

_stack: list[Any] = []


def current() -> Any:
    """The innermost active strategy, or None."""
    return _stack[-1] if _stack else None


def push(strategy: Any) -> None:
    _stack.append(strategy)


def pop(strategy: Any) -> None:
    if _stack and _stack[-1] is strategy:
        _stack.pop()
