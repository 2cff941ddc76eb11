"""A small timm-style registry: a decorator fills a name -> builder dict.

The CLI's ``--dataset`` / ``--method`` choices come from these registries, so
``--help`` lists what exists.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, Dict, Generic, List, Optional, TypeVar, cast

from bench.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builder callables (or registered objects: a dataset source, a method) of one kind of
    thing (backbone, dataset, method)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: Dict[str, T] = {}

    def register(self, name: Optional[str] = None) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name")`` (defaults to the function's own name)."""

        def decorator(fn: T) -> T:
            key = name or cast(Any, fn).__name__
            if key in self._builders and self._builders[key] is not fn:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._builders[key] = fn
            return fn

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._builders[name]
        except KeyError:
            raise UsageError(
                f"unknown {self.kind} '{name}'; expected one of: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        return cast(Callable[..., Any], self.get(name))(**kwargs)

    def names(self, pattern: str = "*") -> List[str]:
        return sorted(n for n in self._builders if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self._builders

    def __len__(self) -> int:
        return len(self._builders)
