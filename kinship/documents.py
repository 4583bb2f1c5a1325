"""Reading YAML files the way every Kinship command does, so that a bad file is reported the same
way everywhere: the file, the line (or document number), and what is wrong.

Every YAML file a command reads (configs, AgentGraphs, AgentProfiles, pods, snapshots, the example
teams) goes through `load_yaml` / `load_yaml_documents` here, never `yaml.safe_load`: safe_load
constructs no arbitrary objects, but it follows aliases, and nine anchors of nine aliases each are
a 392-byte file that later code (a JSON encode, a validation, a deep copy) walks as 9^9 values,
131 MB and counting. Kubernetes objects never need an anchor (kubectl prints none), so the loader
refuses anchors and aliases outright, at the line where the first one appears; and it bounds
nesting, which PyYAML's recursive composer would otherwise turn into a RecursionError traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from kinship.errors import InputError

# Far deeper than any Kubernetes object or Kinship config (a Pod is about 15 levels), far below
# what exhausts Python's recursion limit in PyYAML's composer (about 490 levels).
MAX_YAML_DEPTH = 100


class _Refused(yaml.MarkedYAMLError):
    """A construct the loader does not accept, at a place in the file."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases (and so merge keys `<<: *x`) and without deep nesting."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
            raise _Refused(
                problem=f"YAML {kind} {'*' if kind == 'alias' else '&'}{event.anchor} is not accepted "
                "(anchors and aliases can expand a small file without bound): write the value out",
                problem_mark=event.start_mark,
            )
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(
                problem=f"nested deeper than {MAX_YAML_DEPTH} levels", problem_mark=event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _describe(exc: yaml.YAMLError) -> str:
    """`line L, column C: what` from PyYAML's error; its own text names "<unicode string>", not
    the file, and spreads over several lines."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = "; ".join(p for p in (exc.context, exc.problem) if p)
        prefix = "" if isinstance(exc, _Refused) else "invalid YAML: "
        return f"line {mark.line + 1}, column {mark.column + 1}: {prefix}{what}"
    return f"invalid YAML: {exc}"


def load_yaml(text: str | bytes, source: str) -> Any:
    """The one document of `text` (None when empty); bad YAML is an InputError naming `source`."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise InputError(source, [_describe(exc)]) from None
    finally:
        loader.dispose()


def load_yaml_documents(text: str | bytes, source: str) -> list[Any]:
    """Every document of `text`, in order; bad YAML is an InputError naming `source`."""
    loader = _StrictLoader(text)
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
        return documents
    except yaml.YAMLError as exc:
        raise InputError(source, [_describe(exc)]) from None
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise InputError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), [f"not UTF-8 text: {exc}"]) from None


def read_yaml(path: Path) -> Any:
    """The one document of a file; unreadable files and invalid YAML become an InputError."""
    return load_yaml(_read_text(path), str(path))


def read_yaml_documents(path: Path) -> list[Any]:
    """All documents of a file; unreadable files and invalid YAML become an InputError."""
    return load_yaml_documents(_read_text(path), str(path))


def object_documents(path: Path, kind: str) -> Iterator[tuple[str, Any]]:
    """(where, object) for every object of a multi-document file or a `kind: List` (what
    `kubectl get -o yaml` prints); a file with none is an error naming `kind`."""
    n = 0
    for i, doc in enumerate(read_yaml_documents(path), 1):
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List":
            for j, item in enumerate(doc.get("items") or []):
                n += 1
                yield f"{path}: document {i} items[{j}]", item
            continue
        n += 1
        yield f"{path}: document {i}", doc
    if n == 0:
        raise InputError(str(path), [f"no {kind} documents in the file"])


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A field of a Kubernetes object as a mapping: missing or of another type reads as empty, so
    a pod the API server would reject is judged as having no such field, not a traceback."""
    return value if isinstance(value, Mapping) else _EMPTY


_EMPTY: Mapping[str, Any] = MappingProxyType({})
