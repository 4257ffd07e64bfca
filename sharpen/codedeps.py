"""The code each DVC stage runs, read from the source: the transitive closure of its project imports.

A stage's `deps` in dvc.yaml must cover every module it can import (at the top of a file or inside a
function), or DVC reuses a stale output after that module changes. Lists kept by hand drift, so
they are generated: `sharpen deps` rewrites the code entries of every stage's deps (its data deps
stay as written) and `sharpen deps --check` lists the differences and exits 1 (tests/test_stage_deps.py
runs it). A package whose every module is in the closure is listed as its directory.

A user's own verifier or task source, named by import path in params.yaml (`verify.verifier:
mypkg.rewards:score`), is code too: its module's file (and the project modules it imports) is a
dep of every stage that can load it, so editing it reruns them. A stage that loads a plug-in which
its dvc.yaml entry does not list refuses to run (sharpen/plugins.py), so a forgotten `sharpen deps`
cannot leave a stale round.

Run: `sharpen deps [--check]`
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

CODE_ROOTS = ("sharpen", "stages")  # the project's packages; anything else a stage lists is data


def module_file(root: Path, name: str) -> Path | None:
    parts = name.split(".")
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def imports_of(root: Path, path: Path, roots: tuple[str, ...] = CODE_ROOTS) -> set[str]:
    """Every project module `path` imports, anywhere in it (lazy imports inside functions included)."""
    return _imports_of(root, path, path.stat().st_mtime_ns, roots)


@functools.lru_cache(maxsize=4096)
def _imports_of(root: Path, path: Path, _mtime: int, roots: tuple[str, ...]) -> frozenset[str]:
    found: set[str] = set()
    package = path.relative_to(root).with_suffix("").parts[:-1]
    if path.name == "__init__.py":
        package = path.relative_to(root).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = list(package[: len(package) - node.level + 1])
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from sharpen import faults` imports a module
    return frozenset(m for m in found if m.split(".")[0] in roots and module_file(root, m))


def closure(root: Path, module: str, roots: tuple[str, ...] = CODE_ROOTS) -> set[Path]:
    """The files of `module` and of every project module it imports, transitively; importing a.b.c
    runs a/__init__.py and a/b/__init__.py first, so those count too."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):
            path = module_file(root, ".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(imports_of(root, path, roots))
    return seen


def _compact(root: Path, files: set[Path]) -> list[str]:
    """Relative paths, a package listed as its directory when every module in it (recursively) is used."""
    rel = {f.relative_to(root).as_posix() for f in files}
    packages = sorted({str(Path(r).parent) for r in rel if r.endswith("/__init__.py")}, key=len)
    out = set(rel)
    for pkg in packages:
        modules = {p.relative_to(root).as_posix() for p in (root / pkg).rglob("*.py") if "__pycache__" not in p.parts}
        if pkg.count("/") >= 1 and modules <= rel:  # a subpackage (sharpen/verifiers), never the top one
            out = {r for r in out if not r.startswith(pkg + "/")} | {pkg}
    return sorted(out, key=lambda p: (not p.startswith("stages/"), p))


def stage_module(cmd: str) -> str:
    return cmd.split("python -m ", 1)[1].split()[0]


# the module that loads each kind of plug-in: a stage that imports it can run the user's code
PLUGIN_LOADERS = {"verify.verifier": "sharpen/verifiers/registry.py", "task.name": "stages/tasks.py"}


def plugin_files(root: Path) -> dict[str, list[str]]:
    """loader file -> the files of the plug-ins params.yaml names (relative to `root` when inside it):
    the plug-in module and the modules of its own package it imports."""
    from sharpen.config import load_params
    from sharpen.plugins import is_import_path, source_of

    if not (root / "params.yaml").exists():
        return {}
    params = load_params(root / "params.yaml")
    named = {"verify.verifier": params.verify.verifier, "task.name": params.task.name}
    out: dict[str, list[str]] = {}
    for key, value in named.items():
        if not is_import_path(value):
            continue
        module = value.split(":")[0]
        top = module.split(".")[0]
        if module_file(root, module) is None:  # installed elsewhere: its file, as an absolute path
            out[PLUGIN_LOADERS[key]] = [str(source_of(value, key))]
            continue
        files = closure(root, module, roots=(*CODE_ROOTS, top))
        out[PLUGIN_LOADERS[key]] = sorted(f.relative_to(root).as_posix() for f in files if f.relative_to(root).with_suffix("").parts[0] == top)
    return out


def code_deps(root: Path, cmd: str, plugins: dict[str, list[str]] | None = None) -> list[str]:
    """The code deps of the stage that runs `cmd` (`python -m stages.<name> ...`), with the files of
    the plug-ins (`plugin_files`) it can load."""
    files = closure(root, stage_module(cmd))
    extra = [f for loader, paths in (plugins or {}).items() if root / loader in files for f in paths]
    return _compact(root, files) + sorted(set(extra))


def _is_code(dep: str, plugins: dict[str, list[str]] | None = None) -> bool:
    return dep.split("/")[0] in CODE_ROOTS or any(dep in paths for paths in (plugins or {}).values())


def _was_plugin(dep: str) -> bool:
    """A dep that looks like code outside the project's packages (a plug-in named before)."""
    return dep.endswith(".py")


def differences(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """stage -> (code deps it lacks, code deps it lists but does not import)."""
    from sharpen.io import read_yaml

    stages = read_yaml(root / "dvc.yaml")["stages"]
    plugins = plugin_files(root)
    out = {}
    for name, spec in stages.items():
        want = set(code_deps(root, spec["cmd"], plugins))
        have = {d for d in spec.get("deps", []) if _is_code(d, plugins) or _was_plugin(d)}
        if want != have:
            out[name] = (sorted(want - have), sorted(have - want))
    return out


def rewrite(root: Path) -> list[str]:
    """Replace every stage's code deps in dvc.yaml with its closure (data deps kept, in order, after the
    code); comments and layout elsewhere are kept. Returns the stages that changed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    from sharpen.io import atomic_write

    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = root / "dvc.yaml"
    doc = yaml.load(path.read_text())
    plugins = plugin_files(root)
    changed = []
    for name, spec in doc["stages"].items():
        data = [d for d in spec.get("deps", []) if not (_is_code(d, plugins) or _was_plugin(d))]
        deps = code_deps(root, spec["cmd"], plugins) + data
        if list(spec.get("deps", [])) != deps:
            changed.append(name)
            seq = CommentedSeq(deps)
            seq.fa.set_flow_style()
            spec["deps"] = seq
    if changed:
        import io

        buf = io.StringIO()
        yaml.dump(doc, buf)
        atomic_write(path, lambda tmp: tmp.write_text(buf.getvalue()))
    return changed


def import_graph(root: Path, package: str = "sharpen") -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in it), over every module of `package`."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(root, path):
            parts = imported.split(".")
            found = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in modules), None)
            if found and found != name:
                targets.add(found)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles
