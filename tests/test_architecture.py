"""ARCHITECTURE.md's rules, read from the code: layers, public names only, small modules and functions.

Each rule has a list of today's known exceptions, named in ARCHITECTURE.md under "Not yet as described".
A new violation fails, and so does an exception that has been fixed but is still listed: the list may only shrink.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "odeteach"

CORE = {"errors", "validation", "tableaux", "step_control", "inputs", "integrate", "adjoint"}
UTILITIES = {"errors", "validation", "fast_mode", "progress"}
UI = {"widgets", "figures", "exercises"}

# Known exceptions (none today); a rule broken on purpose for a while is listed here and in ARCHITECTURE.md.
KNOWN_UI_IMPORTS: set = set()          # (figures or exercises module, widgets module it imports)
KNOWN_PRIVATE_IMPORTS: set = set()     # (importing module, imported module, name)
KNOWN_LONG_MODULES: set = set()
KNOWN_LONG_FUNCTIONS: set = set()
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 80


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)
        package = ".".join(parts[:-1])
        yield name, package, path, ast.parse(path.read_text())


def _imports(package, tree):
    """(imported module relative to odeteach, names) for every odeteach import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif (node.module or "").startswith("odeteach"):
                target = node.module.removeprefix("odeteach").lstrip(".")
            else:
                continue
            yield target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("odeteach"):
                    yield a.name.removeprefix("odeteach").lstrip("."), []


MODULES = list(_modules())
IMPORTS = {name: list(_imports(package, tree)) for name, package, _, tree in MODULES}


def _top(module):
    return module.split(".")[0] if module else ""


def test_the_package_is_read():
    assert {"integrate", "inputs", "adjoint", "widgets.solvers", "exercises.lesson01"} <= set(IMPORTS)


def test_core_imports_only_core_and_utilities():
    bad = [(m, t) for m in CORE for t, _ in IMPORTS[m] if t and _top(t) not in CORE | UTILITIES]
    assert not bad, f"core modules import from higher layers: {bad}"


def test_domains_import_no_widgets_figures_or_exercises():
    domains = [m for m in IMPORTS if _top(m) not in UI and m not in CORE and m]
    bad = [(m, t) for m in domains for t, _ in IMPORTS[m] if _top(t) in UI]
    assert not bad, f"domain modules import UI modules: {bad}"


def test_figures_and_exercises_import_no_widgets():
    found = {(m, t) for m in IMPORTS if _top(m) in {"figures", "exercises"} for t, _ in IMPORTS[m]
             if _top(t) == "widgets"}
    assert found - KNOWN_UI_IMPORTS == set(), "new imports of widgets from figures/exercises"
    assert KNOWN_UI_IMPORTS - found == set(), "fixed: remove these from KNOWN_UI_IMPORTS and ARCHITECTURE.md"


def test_no_module_imports_another_modules_underscore_names():
    found = {(m, t, n) for m in IMPORTS for t, names in IMPORTS[m] for n in names
             if n.startswith("_") and not n.startswith("__") and t != m}
    assert found - KNOWN_PRIVATE_IMPORTS == set(), "new imports of underscore names: make the name public"
    assert KNOWN_PRIVATE_IMPORTS - found == set(), "fixed: remove these from KNOWN_PRIVATE_IMPORTS"


def test_modules_and_functions_are_small():
    long_modules = {name for name, _, path, _ in MODULES if path.read_text().count("\n") > MAX_MODULE_LINES}
    long_functions = {(name, node.name) for name, _, _, tree in MODULES for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES}
    assert long_modules - KNOWN_LONG_MODULES == set(), f"modules over {MAX_MODULE_LINES} lines"
    assert long_functions - KNOWN_LONG_FUNCTIONS == set(), f"functions over {MAX_FUNCTION_LINES} lines"
    assert KNOWN_LONG_MODULES - long_modules == set(), "now small: remove from KNOWN_LONG_MODULES"
    assert KNOWN_LONG_FUNCTIONS - long_functions == set(), "now short: remove from KNOWN_LONG_FUNCTIONS"


@pytest.mark.parametrize("module", sorted(CORE))
def test_core_modules_exist(module):
    assert module in IMPORTS
