"""fastfl's exceptions: one base class, every class in fastfl/errors.py, each also a builtin users catch."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import fastfl
from fastfl import errors

BUILTINS = (ValueError, TypeError, RuntimeError, TimeoutError, ImportError, LookupError, OSError)
ROOT = Path(fastfl.__file__).parent


def _error_classes() -> list[type]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]


def test_every_error_is_a_fastfl_error_and_a_builtin():
    classes = _error_classes()
    assert len(classes) > 20
    for cls in classes:
        if cls is errors.FastFLError:
            continue
        assert issubclass(cls, errors.FastFLError), cls
        assert issubclass(cls, BUILTINS), f"{cls.__name__} must also subclass the builtin users catch"
        assert cls.__doc__, f"{cls.__name__} needs a docstring saying when it is raised"


def test_no_exception_class_is_defined_outside_errors_py():
    """Public ones, that is: a private class used for control flow inside a module never reaches users."""
    found = set()
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ClassDef)
                and not node.name.startswith("_")
                and any(
                    isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception", "Timeout")))
                    for b in node.bases
                )
            ):
                found.add((rel, node.name))
    assert not found, sorted(found)


def test_communicator_raises_no_kernel_errors():
    for path in (ROOT / "core" / "communicator").glob("*.py"):
        text = path.read_text()
        assert "KernelArgumentError" not in text and "KernelTypeError" not in text, path.name
