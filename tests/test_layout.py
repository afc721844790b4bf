"""The layout's promises: the bottom layer imports nothing else of FashionFlow, no module imports
itself back through others (deferred imports included), and `--help` stays light (no torch, numpy or PIL)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fashionflow"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports, at the top or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in modules and m != name}


def test_the_bottom_layer_imports_nothing_else_of_the_package():
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in (PACKAGE / "base").glob("*.py"):
        outside = {m for m in imports_of(path, modules) if not m.startswith("fashionflow.base")}
        assert not outside, f"{path.name} imports {outside}"


def test_no_import_cycles():
    paths = [*PACKAGE.rglob("*.py"), ROOT / "app.py"]
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imports_of(p, modules) for p in paths}
    # a package's __init__ only hands its modules' names on: importing a module of it is not importing it back
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target) :] + [target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def loaded_by_help(modules: tuple[str, ...]) -> str:
    """Which of `modules` a fresh process has imported once it has built the command line's parser."""
    code = (
        "import sys; from fashionflow.cli import build_parser; build_parser(); "
        f"print(sorted(m for m in {modules!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_help_imports_nothing_heavy():
    assert loaded_by_help(("torch", "diffusers", "transformers", "accelerate", "gradio")) == "[]"


def test_help_reads_photo_and_video_choices_without_numpy_or_pil():
    assert loaded_by_help(("numpy", "PIL")) == "[]"
