"""Old public names, kept working with a ``DeprecationWarning`` that names the
new one (each is listed in CHANGELOG.md)."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

_P = ParamSpec("_P")
_R = TypeVar("_R")


def old_name(module: str, name: str, table: dict[str, tuple[str, Any]]) -> Any:
    """For a module's ``__getattr__``: the value an old name stands for, with a
    warning naming its replacement; ``AttributeError`` for any other name."""
    if name not in table:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    new_name, value = table[name]
    warnings.warn(
        f"{module}.{name} is deprecated: use {module}.{new_name}",
        DeprecationWarning,
        stacklevel=3,
    )
    return value


def renamed_parameter(old: str, new: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Lets a function still be called with a parameter's old keyword, which
    warns; the signature (and so every type checker) knows only the new one.

    >>> @renamed_parameter("nexus", "memory")
    ... def describe(memory: str) -> str:
    ...     return memory
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     describe(nexus="a store")
    'a store'
    >>> print(caught[0].message)
    describe(nexus=...) is deprecated: pass memory=... (any memory, a Nexus or a Client)
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        def renamed(kwargs: dict[str, Any]) -> None:
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{function.__name__}() got both {old}= and {new}=")
                warnings.warn(
                    f"{function.__name__}({old}=...) is deprecated: pass {new}=... "
                    "(any memory, a Nexus or a Client)",
                    DeprecationWarning,
                    stacklevel=3,
                )
                kwargs[new] = kwargs.pop(old)

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                renamed(kwargs)
                return await function(*args, **kwargs)

            return cast("Callable[_P, _R]", call_async)

        @functools.wraps(function)
        def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            renamed(kwargs)
            return function(*args, **kwargs)

        return call

    return decorate
