"""Have the functions test cells rely on been replaced since cnncourse was imported?

Test cells compute their expected values with torch (``torch.softmax(x)``) and check with
``cnncourse.grading``; a solution cell that reassigns ``torch.softmax``, ``torch.Tensor.any``
or ``builtins.isinstance`` would make both sides agree. Every notebook imports cnncourse in
its locked setup cell, before any student code runs, so the snapshot taken at that import
holds the real objects; ``report`` compares by identity (``is``, which no object can fake)
and costs about a millisecond. The grader (``cnncourse.grade``) calls it after every test
cell, through IPython's ``user_expressions``, which the shell evaluates without the cell
transformers a notebook might have installed.

Only names that existed at the snapshot are compared: torch adds attributes as its
submodules load, which is fine. A determined student can still defeat an in-process
check (by editing this module's snapshot, say); the grader's static scan flags the
spellings that need (``sys.modules``, ``__dict__``, ``setattr``...).
"""

from __future__ import annotations

import importlib
import types

_MODULES = ("builtins", "math", "operator", "functools", "torch", "torch.nn.functional",
            "torch.nn.init", "torch.testing", "torch.linalg", "torch.special", "torch.autograd",
            "numpy", "numpy.testing", "cnncourse.grading", "cnncourse.layers",
            "cnncourse.shapes", "cnncourse.utils")  # fmt: skip
_CLASSES = ("torch.Tensor", "torch.nn.Module", "torch.nn.Parameter")


def _namespaces() -> dict[str, dict]:
    spaces = {}
    for name in _MODULES:
        try:
            spaces[name] = vars(importlib.import_module(name))
        except ImportError:
            continue
    for name in _CLASSES:  # what attribute lookup finds, inherited names included
        module, _, attr = name.rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
        spaces[name] = {n: next(k.__dict__[n] for k in cls.__mro__ if n in k.__dict__)
                        for n in dir(cls)}  # fmt: skip
    return spaces


# Builtins the IPython kernel itself sets per cell or per session.
_SHELL_BUILTINS = {"input", "get_ipython", "display", "exit", "quit", "help", "copyright",
                   "credits", "license", "breakpoint", "_", "__", "___"}  # fmt: skip


def _watched(value) -> bool:
    return callable(value) and not isinstance(value, types.ModuleType)


def _torch_wrapper_of(new, old) -> bool:
    """torch wraps some of its own functions when a submodule loads (``import
    torch._dynamo`` replaces ``torch.manual_seed`` by a wrapper): allowed when the wrapper's
    code lives in torch's own files and wraps the original."""
    import torch

    code = getattr(new, "__code__", None)
    home = torch.__file__.rsplit("/", 1)[0]
    return (getattr(new, "__wrapped__", None) is old and code is not None
            and code.co_filename.startswith(home))  # fmt: skip


def take_snapshot() -> dict[str, dict[str, object]]:
    """{namespace: {name: object}} for every callable in the watched namespaces."""
    snap = {space: {k: v for k, v in dict(ns).items() if _watched(v)}
            for space, ns in _namespaces().items()}  # fmt: skip
    for name in _SHELL_BUILTINS:
        snap.get("builtins", {}).pop(name, None)
    return snap


_SNAPSHOT: dict[str, dict[str, object]] = {}
_missing = object()


def changed() -> list[str]:
    """The watched names that no longer hold the object they held at the snapshot."""
    found = []
    spaces = _namespaces()
    for space, names in _SNAPSHOT.items():
        ns = spaces.get(space, {})
        for name, value in names.items():
            now = ns.get(name, _missing)
            if now is not value and not _torch_wrapper_of(now, value):
                found.append(f"{space}.{name}" if space != "builtins" else name)
    return found


def report(token: str) -> str:
    """``"intact <token>"`` when nothing watched was replaced, else the names replaced."""
    names = changed()
    if not names:
        return f"intact {token}"
    return "replaced: " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")


def _init() -> None:
    _SNAPSHOT.update(take_snapshot())
