"""A small timm-style registry: a decorator fills a name -> builder dict.

The CLI's ``--dataset`` / ``--method`` choices come from these registries, so
``--help`` lists what exists.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, Dict, List, Optional

from bench.errors import UsageError


class Registry:
    """Maps names to builder callables for one kind of thing (backbone, dataset, method)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: Dict[str, Callable[..., Any]] = {}

    def register(self, name: Optional[str] = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@REG.register("name")`` (defaults to the function's own name)."""

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            key = name or fn.__name__
            if key in self._builders and self._builders[key] is not fn:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._builders[key] = fn
            return fn

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._builders[name]
        except KeyError:
            raise UsageError(
                f"unknown {self.kind} '{name}'; expected one of: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self, pattern: str = "*") -> List[str]:
        return sorted(n for n in self._builders if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self._builders

    def __len__(self) -> int:
        return len(self._builders)
