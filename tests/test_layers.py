"""The package's layers: every module imports alone, no module imports one of a higher layer (lazy imports
inside functions count too), so there is no import circle."""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from conftest import ROOT

PACKAGE = ROOT / "nextnum"
# lower layers first; a module may import its own layer or lower ones
LAYERS = [
    {"config", "inputs", "atomic", "ink", "digits", "geometry", "distributed", "timing", "corrections", "hands", "sheet", "levels", "rules"},
    {"model", "data", "scenes", "strokes", "preprocess", "runtime", "attention", "checkpoint", "resume", "scoring", "tta"},
    {"explain", "export", "correction_canvases", "stream", "losses", "warmstart"},
    {"predictor"},
    {"evaluate", "train", "validation", "calibrate", "analyze", "sweep", "read", "faithful", "__init__"},
    {"web"},
]


def modules() -> list[str]:
    return sorted(p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                  for p in PACKAGE.rglob("*.py"))


def layer(module: str) -> int:
    parts = module.split(".")
    name = "web" if parts[1:2] == ["web"] else (parts[1] if len(parts) > 1 else "__init__")
    found = [i for i, names in enumerate(LAYERS) if name in names]
    assert found, f"{module} belongs to no layer: add it to LAYERS"
    return found[0]


def imports(module: str) -> set[str]:
    """nextnum modules that module imports, anywhere in it (relative or absolute)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    pkg = module.rsplit(".", 1)[0] if not path.name == "__init__.py" else module
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            out.update(n for n in names if n.startswith("nextnum"))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("nextnum"))
    known = set(modules())
    return {n if n in known else n.rsplit(".", 1)[0] for n in out} & known - {module}


@pytest.mark.parametrize("module", modules())
def test_a_module_imports_only_its_own_layer_or_lower(module):
    mine = layer(module)
    higher = sorted(m for m in imports(module) if layer(m) > mine)
    assert not higher, f"{module} (layer {mine}) imports {higher}"


ALONE = """
import importlib, json, sys, traceback
failed = {}
for m in sys.argv[1:]:
    for name in [n for n in sys.modules if n == "nextnum" or n.startswith("nextnum.")]:
        del sys.modules[name]
    try:
        importlib.import_module(m)
    except Exception:
        failed[m] = traceback.format_exc()[-1500:]
print(json.dumps(failed))
"""


def test_every_module_imports_alone():
    """Each module imports with no other nextnum module loaded before it (one interpreter, the package's
    modules dropped from sys.modules before each import; third-party libraries stay loaded, which no import
    circle of ours depends on)."""
    r = subprocess.run([sys.executable, "-c", ALONE, *modules()], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    failed = json.loads(r.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{m} does not import alone:\n{e}" for m, e in failed.items())
