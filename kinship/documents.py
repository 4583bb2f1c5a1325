"""Reading Kubernetes-style YAML files the way every Kinship command does, so that a bad file is
reported the same way everywhere: the file, the document number, and what is wrong."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from kinship.errors import InputError


def read_yaml_documents(path: Path) -> list[Any]:
    """All documents of a file; unreadable files and invalid YAML become an InputError."""
    try:
        return list(yaml.safe_load_all(path.read_text()))
    except OSError as exc:
        raise InputError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise InputError(str(path), [f"invalid YAML: {exc}"]) from None


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
