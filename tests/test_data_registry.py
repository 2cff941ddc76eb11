"""The data layer's structure and plumbing: no import cycle, the one data-root resolver, list paths kept
exactly as written, generated folders that honour the umask."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest
from fixtures_data import make_arnet, make_synthetic, make_tsm_lists, write_frames

from bench.data import DATA_ENV, ClipSpec, create_dataset, ensure_synthetic, resolve_data_root
from bench.errors import DatasetNotFoundError, UsageError

DATA_DIR = Path(__file__).resolve().parents[1] / "bench" / "data"


# ------------------------------------------------------------------------------------------ import graph
def _module(name: str) -> str:
    """``bench.data.x[.attr]`` -> ``bench.data.x`` when x is a module of bench/data, else the package."""
    parts = name.split(".")
    return ".".join(parts[:3]) if len(parts) > 2 and (DATA_DIR / f"{parts[2]}.py").is_file() else "bench.data"


def _imports(path: Path) -> set:
    """bench.data modules (or the package itself) imported anywhere in ``path``, function-level (lazy)
    imports included: ``from bench.data import f`` depends on the package's ``__init__``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module in ("bench.data", "bench"):
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {_module(m) for m in found if m == "bench.data" or m.startswith("bench.data.")}


def _cycle(graph: dict):
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, stack + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_cycle_in_bench_data():
    name = lambda p: "bench.data" if p.stem == "__init__" else f"bench.data.{p.stem}"  # noqa: E731
    graph = {name(p): _imports(p) - {name(p)} for p in DATA_DIR.glob("*.py")}
    assert graph["bench.data.datasets"] and graph["bench.data.synthetic_dataset"]  # the graph is not empty
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the detector finds one when there is one


# ------------------------------------------------------------------------------------------ data root
def _jester(root: Path) -> None:
    root.mkdir(parents=True)
    make_tsm_lists(root)


def test_resolve_data_root_given_root_is_checked_and_absolute(tmp_path, monkeypatch):
    _jester(tmp_path / "jester")
    monkeypatch.chdir(tmp_path)
    root = resolve_data_root("jester", "jester")
    assert root == tmp_path / "jester" and root.is_absolute()
    with pytest.raises(DatasetNotFoundError) as e:
        resolve_data_root("actnet", "jester")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--dataset actnet: ") and "no actnet layout found" in msg
    assert "classInd.txt" in msg and "README's Datasets section" in msg
    with pytest.raises(UsageError, match="unknown dataset 'nope'"):
        resolve_data_root("nope")


def test_resolve_data_root_looks_in_the_environment_then_in_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError) as e:
        resolve_data_root("jester")
    msg = str(e.value)
    assert "\n" not in msg and "looked in data/jester" in msg and f"${DATA_ENV}" in msg
    assert "jester-v1-labels.csv or category.txt" in msg and "README's Datasets section" in msg
    _jester(tmp_path / "data" / "jester")
    assert resolve_data_root("jester") == tmp_path / "data" / "jester"
    _jester(tmp_path / "shared" / "jester")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "shared"))
    assert resolve_data_root("jester") == tmp_path / "shared" / "jester"  # the variable comes first
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "elsewhere"))
    assert resolve_data_root("jester") == tmp_path / "data" / "jester"


def test_resolve_data_root_synthetic_uses_the_given_root(tmp_path):
    root = make_synthetic(tmp_path / "syn")
    assert resolve_data_root("synthetic", root) == root.absolute()


# ------------------------------------------------------------------------------------------ list paths
def test_list_paths_keep_runs_of_spaces(tmp_path):
    fx = make_arnet(tmp_path, "minik")
    name = "abseiling/two  spaces   three"
    write_frames(tmp_path / name, 5, "img_{:05d}.jpg")
    with open(tmp_path / "mini_train_videofolder.txt", "a") as f:
        f.write(f"{name}  5   2\n")
    ds = create_dataset("minik", tmp_path, "train", ClipSpec(frames=4, input_size=24, resize=28), train=False)
    rec = ds.records[-1]
    assert rec.key == name and rec.path == str(tmp_path / name) and rec.num_frames == 5 and rec.labels == (2,)
    assert ds[len(ds) - 1]["label"].item() == 2
    assert len(ds) == len(fx.train) + 1


# ------------------------------------------------------------------------------------------ umask
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_generated_folders_and_caches_honour_the_umask(tmp_path, umask_022):
    root = make_synthetic(tmp_path / "syn")
    assert _mode(root) == 0o755 and _mode(root / "frames") == 0o755
    create_dataset("synthetic", root, "train", ClipSpec(frames=4, input_size=32, resize=32), train=False)
    (cache,) = (root / "cache").glob("*.npy")
    assert _mode(cache) == 0o644
    cached = ensure_synthetic(
        tmp_path / "cache",
        classes=2,
        videos_per_class=(2, 1),
        frames=4,
        size=32,
        object_size=8,
        clutter=1,
        workers=1,
    )
    assert _mode(cached) == 0o755 and _mode(cached / "meta.json") == 0o644
    os.umask(0o077)
    private = make_synthetic(tmp_path / "private")
    assert _mode(private) == 0o700  # the umask decides, in both directions
