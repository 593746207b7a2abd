"""The house stays small: no module of the package (subpackages included) nor app.py over 350 lines,
no function over 100 lines, and each module opens with its purpose in a docstring."""
import ast
from pathlib import Path
from conftest import ROOT

MODULE_LINES, FUNCTION_LINES = 350, 100


def sources() -> list[Path]:
    return sorted((ROOT / "nextnum").rglob("*.py")) + [ROOT / "app.py"]


def test_no_module_over_350_lines():
    long = {str(f.relative_to(ROOT)): n for f in sources() if (n := len(f.read_text().splitlines())) > MODULE_LINES}
    assert not long, long


def test_no_function_over_100_lines():
    long = {}
    for f in sources():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > FUNCTION_LINES:
                    long[f"{f.relative_to(ROOT)}:{node.lineno} {node.name}"] = n
    assert not long, long


def test_every_module_says_what_it_is_for():
    missing = [str(f.relative_to(ROOT)) for f in sources() if not ast.get_docstring(ast.parse(f.read_text()))]
    assert not missing, missing
