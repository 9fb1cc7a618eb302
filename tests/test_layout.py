"""The layout keeps its promises: no import cycle, no private name across modules, a light command line,
and documentation tables that list what the registries hold."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bigalign import METRICS
from bigalign.blocking import BLOCKINGS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bigalign"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _loaded(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a module's body, with those of ``if TYPE_CHECKING:`` blocks: a cycle a type
    checker sees is a cycle."""
    found = []
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found += node.body
        else:
            found.append(node)
    return found


def top_level_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names imported from it) of the imports a module runs when it loads (or names for
    type checking)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in _loaded(ast.parse(path.read_text()).body):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[:len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bigalign"):
            found.append((node.module, [a.name for a in node.names]))
    return found


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_no_import_cycle():
    known = modules()
    graph = {}
    for name, path in known.items():
        edges = set()
        # importing a.b.c runs a.b's __init__ first (unless a.b is being imported: an ancestor)
        ancestors = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}
        for target, names in top_level_imports(path):
            for imported in names:  # "from . import x" imports the module x
                if f"{target}.{imported}" in known:
                    edges.add(f"{target}.{imported}")
            if target in known and target not in ancestors:
                edges.add(target)
        for target in list(edges):
            parts = target.split(".")
            edges |= {".".join(parts[:k]) for k in range(2, len(parts))} - ancestors
        graph[name] = (edges & set(known)) - {name}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(nxt):] + [nxt]))
            if not state.get(nxt):
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if not state.get(node):
            visit(node, [node])


def test_the_values_library_imports_nothing_above_it():
    """``values/`` is what normalizers, metrics and blockings share: it reads nothing of theirs."""
    climbing = [f"{path.relative_to(ROOT)}: {target}" for path in (PACKAGE / "values").glob("*.py")
                for target, _ in top_level_imports(path) if not target.startswith("bigalign.values")]
    assert not climbing


# The size a room keeps: a module a reader holds whole, a function read on one screen or two.
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def test_modules_and_functions_stay_readable():
    """No module over 600 lines; no function over 80 lines of code (its docstring aside: the public entry
    points document every argument)."""
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                documented = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str)
                start = first.end_lineno + 1 if documented and len(node.body) > 1 else node.lineno
                if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}: {node.name}: {node.end_lineno - start + 1} lines")
    assert not too_long


def test_no_private_name_is_imported_across_modules():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("bigalign")):
                offenders += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert not offenders


@pytest.mark.integration
def test_the_command_line_does_not_load_dask_to_say_what_it_does():
    code = ("import runpy, sys\nsys.argv = ['bigalign', '--help']\ntry:\n    runpy.run_module('bigalign', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\nprint(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage: bigalign" in out and out.strip().endswith("[]")


@pytest.mark.integration
@pytest.mark.parametrize("chosen", [None, "mimalloc"])
def test_the_command_puts_arrow_on_the_c_allocator_unless_the_user_chose(chosen):
    # Arrow reads the variable when first imported: the command sets it before anything imports Arrow.
    code = ("import runpy, sys\nsys.argv = ['bigalign', '--help']\ntry:\n    runpy.run_module('bigalign', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "import pyarrow\nprint(pyarrow.default_memory_pool().backend_name)")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split()[-1] == (chosen or "system")
    # (the package loads its public names when first asked for: importing it loads no Arrow)
    lazy = subprocess.run([sys.executable, "-c", "import sys, bigalign\nprint('pyarrow' in sys.modules, "
                           "all(getattr(bigalign, name) is not None for name in bigalign.__all__))"],
                          capture_output=True, text=True, check=True).stdout
    assert lazy.split() == ["False", "True"]


def test_the_readme_tables_list_the_registries():
    readme = (ROOT / "README.md").read_text()
    metrics = readme[readme.index("### Metrics"):readme.index("A missing value")]
    documented = set(re.findall(r"^\| `([a-z_]+)`", metrics, re.M))
    documented |= {m for line in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)+) \|", metrics, re.M)
                   for m in re.findall(r"`([a-z_]+)`", line)}
    assert documented == set(METRICS)
    blockings = readme[readme.index("### Blockings"):readme.index("### Metrics")]
    assert {cls.__name__ for cls in BLOCKINGS.values()} <= set(re.findall(r"^\| `([A-Za-z]+)\(", blockings, re.M))
