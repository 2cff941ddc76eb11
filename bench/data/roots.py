"""Where a dataset's files are: the one data-root resolver (the CLI and the runners call it).

Order: the given ``data_root``; else ``$ADABENCH_DATA/<name>``, then ``./data/<name>``; except that a
generated dataset (the synthetic benchmarks) without a root is always its default set, generated once into
the cache (``$ADABENCH_CACHE`` or ``./.cache``). Every failure is
one line saying where it looked, which layout it expected and where the README explains it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Union, cast

from bench.data.datasets import dataset_source
from bench.errors import DatasetNotFoundError

DATA_ENV = "ADABENCH_DATA"  # a directory holding one root per dataset: $ADABENCH_DATA/<name>
README_HINT = "the README's Datasets section explains the layout and how to get it"


def candidate_roots(name: str) -> List[Path]:
    """Where ``name`` is looked for without ``--data-root``: ``$ADABENCH_DATA/<name>`` (when set),
    ``data/<name>``."""
    env = os.environ.get(DATA_ENV)
    return ([Path(env) / name] if env else []) + [Path("data") / name]


def resolve_data_root(name: str, data_root: Optional[Union[str, Path]] = None) -> Path:
    """The absolute root to read dataset ``name`` from, its layout checked.

    ``data_root`` given: that directory (it must hold one of the dataset's layouts). Not given: for a
    generated dataset its default set, generated on first use into the cache (``$ADABENCH_CACHE`` or
    ``./.cache``); for another dataset the first of ``candidate_roots(name)`` that exists. Raises a
    one-line ``DatasetNotFoundError`` (exit 2) naming where it looked and the layout it expected; an
    unknown name is a ``UsageError``.
    """
    source = dataset_source(name)
    if data_root is None and source.generated:
        return Path(os.path.abspath(cast(Path, source.default_root())))  # a generated set has a root
    if data_root is None:
        looked = candidate_roots(name)
        found = next((p for p in looked if p.is_dir()), None)
        if found is None:
            raise DatasetNotFoundError(
                f"--dataset {name}: no data found (looked in {', '.join(map(str, looked))}; give "
                f"--data-root DIR "
                f"or set ${DATA_ENV}); expected {source.markers()} in the root; {README_HINT}"
            )
        data_root = found
    try:
        source.detect(Path(data_root))
    except DatasetNotFoundError as e:
        raise DatasetNotFoundError(f"--dataset {name}: {e}; {README_HINT}") from None
    return Path(os.path.abspath(data_root))
