"""Reading Kubernetes-style YAML files the way every Kinship command does, so that a bad file is
reported the same way everywhere: the file, the document number, and what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
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
