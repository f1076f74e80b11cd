"""No code outside ``explorer/engine/tasks/`` branches on a task name.

Whatever differs by task is answered by the run's ``Task`` object (``explorer.engine.tasks``):
adding a task touches the task's module, its registration and its tests, nothing else.

The rule, as this test reads the source (``ast``) of every module under ``explorer/`` and
``models/`` except ``explorer/engine/tasks/``:

* **A branch** is flagged: a task name literal (``"classify"``, ``"sequence"``,
  ``"caption"``) used as an operand of a comparison (``==``, ``!=``, ``is``, ``in``,
  ``not in``, including a tuple/list/set of literals on the right: ``task in ("sequence",
  "caption")`` and ``"caption" in pred``), as keys of a dict literal (a lookup table by
  task: two or more keys are task names, or all are; a prediction ``{"caption": text,
  "score": s}`` and manifest columns ``{"label": ..., "text": ..., "caption": ...}`` are
  not), or as a ``match`` case; and ``<expr>.task`` compared (``==``/``!=``) with an
  UPPER_CASE constant (``p.task == CLASSIFY`` hides the same branch). ``p.task in TASKS``
  asks the registry whether a task exists: not a branch.
* **A declaration** is not flagged: a literal task name as a plain value, such as a
  model family's ``register_model(..., tasks=("classify",))`` (the model says which tasks
  it can learn; the registry is asked, ``list_models(task)``), a dataclass default
  (``task: str = "classify"``), or an argparse ``choices`` list (better generated from
  ``TASK_NAMES``, but listing is not branching). Comparing two task values with each other
  (``source.task != project.task``) is not a branch on a name either.

``PENDING`` lists the files that other work still has to rewire (each through the Task
method named in the report of issue 8); the lead empties it. A file listed there that has
no branch left fails too, so the set only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("explorer", "models")
EXEMPT = ROOT / "explorer" / "engine" / "tasks"  # the owners of task knowledge
TASK_NAMES = frozenset({"classify", "sequence", "caption"})

# Files that still branch on a task name and are being rewired elsewhere (none left).
PENDING: set[str] = set()


def _is_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in TASK_NAMES


def _names_in(node: ast.AST) -> bool:
    """A task name literal, or a tuple/list/set holding one."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_name(e) for e in node.elts)
    return _is_name(node)


def _is_constant_name(node: ast.AST) -> bool:
    ident = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return ident.isupper() and len(ident) > 1


def _is_task_attr(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "task"


def branches(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of every branch on a task name in a parsed module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_in(o) for o in operands):
                found.append((node.lineno, "compares with a task name"))
            elif (
                any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)
                and any(_is_task_attr(o) for o in operands)
                and any(_is_constant_name(o) for o in operands)
            ):
                found.append((node.lineno, "compares .task with a constant"))
        elif isinstance(node, ast.Dict):
            named = sum(1 for k in node.keys if k is not None and _is_name(k))
            if named and (named >= 2 or named == len(node.keys)):
                found.append((node.lineno, "dict keyed by task name"))
        elif isinstance(node, ast.match_case):
            pats = [p for p in ast.walk(node.pattern) if isinstance(p, ast.MatchValue)]
            if any(_is_name(p.value) for p in pats):
                found.append((node.pattern.lineno, "match case on a task name"))
    return found


def scan() -> dict[str, list[str]]:
    """``{relative path: ["path:line: what", ...]}`` for every scanned module with a branch."""
    out: dict[str, list[str]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if EXEMPT in path.parents:
                continue
            rel = path.relative_to(ROOT).as_posix()
            hits = branches(ast.parse(path.read_text(encoding="utf-8"), filename=rel))
            if hits:
                out[rel] = [f"{rel}:{line}: {what}" for line, what in sorted(hits)]
    return out


def test_no_branch_on_a_task_name_outside_the_tasks() -> None:
    found = scan()
    offending = [line for rel, lines in found.items() if rel not in PENDING for line in lines]
    assert not offending, "ask the Task object instead of comparing task names:\n" + "\n".join(offending)


def test_pending_only_lists_files_that_still_branch() -> None:
    found = scan()
    stale = sorted(p for p in PENDING if p not in found)
    assert not stale, f"no task-name branch left in {stale}: remove them from PENDING"


def test_the_scanner_sees_each_form_of_branch() -> None:
    src = """
if task == "classify": pass
if t.task in ("sequence", "caption"): pass
if "caption" in pred: pass
if p.task != CLASSIFY: pass
LABELS = {"classify": "one label per image"}
pred = {"caption": "a cat", "score": 0.5}
match task:
    case "sequence": pass
register_model("x", tasks=("classify",))
choices = ["auto", "classify"]
same = source.task != project.task
"""
    lines = sorted(line for line, _ in branches(ast.parse(src)))
    assert lines == [2, 3, 4, 5, 6, 9]
