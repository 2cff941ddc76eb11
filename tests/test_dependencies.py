"""The dependency rule, checked on the source: the command line (cli.py, commands/) -> reports/ -> bench/,
and the method packages -> bench/.

- bench/ imports only bench/ (it never knows the methods or the report);
- reports/ imports only bench/ and reports/;
- a method package imports only bench/ and itself (the methods never import each other);
- the command line reaches the methods only through the registry (bench.methods), never by import; cli.py
  imports commands/, never the reverse (``python -m cli`` would load a second copy of cli.py);
- no import cycle anywhere, function-level (lazy) imports included;
- shared code (bench/, reports/, cli.py, commands/) never names a method: no "v1"/"v2" string literals, and
  no identifier or string literal that is one of a registered method's option fields, flags or result columns.
"""

from __future__ import annotations

import ast
import re
import tokenize
from pathlib import Path
from typing import Dict, List, Set

REPO = Path(__file__).resolve().parent.parent
SHARED = ("bench", "reports")
CLI_LAYER = ("cli", "commands")  # the console-script module and the package of its commands


def _modules() -> Dict[str, Path]:
    """Dotted module name -> file, for cli.py and every package at the repository's top level."""
    out = {"cli": REPO / "cli.py"}
    for init in sorted(REPO.glob("*/__init__.py")):
        pkg = init.parent
        if pkg.name in ("tests", "docs") or pkg.name.startswith("."):
            continue
        for f in sorted(pkg.rglob("*.py")):
            parts = f.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = _modules()
METHOD_PACKAGES = sorted({m.split(".")[0] for m in MODULES} - set(SHARED) - set(CLI_LAYER))


def _imports(name: str, path: Path) -> Set[str]:
    """Project modules ``name`` imports anywhere in its file (module-level and inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # `import bench.data.x as y` of a name inside a module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_there_are_method_packages_to_check():
    assert {"adafocus_v1", "adafocus_v2"} <= set(METHOD_PACKAGES)
    assert "commands" not in METHOD_PACKAGES and {"commands.options", "commands.experiments"} <= set(MODULES)


def _layer_violations(graph: Dict[str, Set[str]]) -> List[str]:
    allowed = {
        "bench": {"bench"},
        "reports": {"bench", "reports"},
        "cli": {"bench", "commands"},
        "commands": {"bench", "reports", "commands"},
    }
    allowed.update({pkg: {"bench", pkg} for pkg in METHOD_PACKAGES})
    return [
        f"{m} imports {t}"
        for m, targets in graph.items()
        for t in sorted(targets)
        if _top(t) not in allowed[_top(m)]
    ]


def test_each_layer_imports_only_what_it_may():
    bad = _layer_violations(GRAPH)
    assert not bad, "\n".join(bad)


def test_the_layer_rule_catches_a_command_that_imports_a_method_or_the_entry_point():
    graph = {
        **GRAPH,
        "commands.models": GRAPH["commands.models"] | {"adafocus_v2.method"},
        "commands.experiments": GRAPH["commands.experiments"] | {"cli"},
    }
    assert sorted(_layer_violations(graph)) == [
        "commands.experiments imports cli",
        "commands.models imports adafocus_v2.method",
    ]


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_anywhere():
    assert not _cycles(GRAPH), _cycles(GRAPH)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_shared_code_never_names_a_method():
    literal = re.compile(r"""["']v[12]["']""")
    files = [p for m, p in MODULES.items() if _top(m) in SHARED + CLI_LAYER]
    hits = [
        f"{p.relative_to(REPO)}:{i}"
        for p in files
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert not hits, hits


def _spelled(path: Path, names: Set[str]) -> List[str]:
    """Identifiers and whole string literals of ``path`` that are one of ``names`` (comments and prose in
    docstrings do not count: a name written there is not code that depends on it)."""
    hits = []
    with tokenize.open(path) as f:
        for tok in tokenize.generate_tokens(f.readline):
            text = tok.string
            if tok.type == tokenize.STRING:
                try:
                    text = ast.literal_eval(text)
                except (ValueError, SyntaxError):  # f-strings
                    continue
            if tok.type in (tokenize.NAME, tokenize.STRING) and text in names:
                hits.append(f"{path.relative_to(REPO)}:{tok.start[0]}: {text}")
    return hits


def _shared_spellings(names: Set[str]) -> List[str]:
    files = [p for m, p in MODULES.items() if _top(m) in SHARED + CLI_LAYER]
    return [hit for p in files for hit in _spelled(p, names)]


def test_shared_code_never_spells_a_method_option_field():
    from bench.methods import own_names

    names = set(own_names())
    assert {"aux_supervision", "stop_gradient", "reward", "stage3", "rl"} <= names
    hits = _shared_spellings(names)
    assert not hits, hits


def test_the_spelling_check_catches_a_field_written_into_bench(tmp_path, monkeypatch):
    bad = REPO / "bench" / "_spelling_probe.py"
    bad.write_text('def f(hp):\n    return hp.stop_gradient, {"reward": 1}\n')
    try:
        monkeypatch.setitem(MODULES, "bench._spelling_probe", bad)
        hits = _shared_spellings({"stop_gradient", "reward"})
    finally:
        bad.unlink()
    assert [h.split(": ")[1] for h in hits if "_spelling_probe" in h] == ["stop_gradient", "reward"]
