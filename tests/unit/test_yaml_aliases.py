"""YAML anchors and aliases are refused in every file a command reads: a billion-laughs file of a
few hundred bytes is an error naming the file and line, never a blow-up in memory."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kinship.cli import app
from kinship.documents import MAX_YAML_DEPTH, load_yaml, load_yaml_documents, read_yaml_documents
from kinship.errors import InputError
from tests.serving import EXAMPLES

runner = CliRunner()
SNAPSHOT = EXAMPLES / "cluster-snapshot.json"
LEVELS = 9  # nine lists of nine aliases to the previous one: 9**9 (387 million) strings expanded
# Memory one refused invocation may allocate (modules already imported): the expanded document
# would take gigabytes, a parse that stops at the first anchor a few kilobytes.
PEAK_BYTES = 8 * 1024 * 1024


def billion_laughs(levels: int = LEVELS) -> str:
    names = "abcdefghi"[:levels]
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip(names, names[1:], strict=False)]
    return "\n".join(lines) + "\n"


def test_the_bomb_is_small() -> None:
    assert len(billion_laughs().encode()) < 400


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (billion_laughs(), "line 1, column 4", "YAML anchor &a is not accepted"),
        ("a: 1\nb: *x\n", "line 2, column 4", "YAML alias *x is not accepted"),
        ("base: &b {cpu: 1}\nmain: {<<: *b}\n", "line 1, column 7", "YAML anchor &b is not accepted"),
        ("a: " + "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH, "line 1, column 103", "nested deeper than 100"),
        ("a: b: c\n", "line 1, column 5", "invalid YAML: mapping values are not allowed here"),
    ],
)
def test_refusals_name_the_file_and_line(text: str, where: str, what: str) -> None:
    for load in (load_yaml, load_yaml_documents):
        with pytest.raises(InputError) as caught:
            load(text, "f.yaml")
        message = caught.value.render()
        assert message.startswith(f"f.yaml: {where}"), message
        assert what in message


def test_plain_yaml_still_loads_as_safe_load_did(tmp_path: Path) -> None:
    assert load_yaml("", "f") is None
    assert load_yaml("a: [1, {b: 2.5}]\nc: '&not-an-anchor'\n<<: {d: 3}\n", "f") == {
        "a": [1, {"b": 2.5}],
        "c": "&not-an-anchor",
        "d": 3,
    }
    assert load_yaml_documents("a: 1\n---\n---\nb: 2\n", "f") == [{"a": 1}, None, {"b": 2}]
    with pytest.raises(InputError, match="expected a single document"):
        load_yaml("a: 1\n---\nb: 2\n", "f")
    deep = "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH  # the root counts as a level
    value, depth = load_yaml(deep, "f"), 0
    while isinstance(value, list):
        value, depth = (value[0] if value else None), depth + 1
    assert depth == MAX_YAML_DEPTH
    with pytest.raises(InputError, match=r"missing\.yaml: cannot read"):
        read_yaml_documents(tmp_path / "missing.yaml")


def _entry_points(tmp: Path, bomb: Path) -> dict[str, list[str]]:
    """Every command-line option that names a YAML file, with the bomb in that file's place."""
    snapshot_yaml = tmp / "snapshot.yaml"
    shutil.copy(bomb, snapshot_yaml)
    usage = tmp / "usage.csv"
    usage.write_text("timestamp,series,cpu_millicores,memory_bytes\n2026-01-01T00:00:00Z,a/main,1,1\n")
    examples = tmp / "examples"
    shutil.copytree(EXAMPLES, examples)
    shutil.copy(bomb, examples / "ops-team.yaml")
    kubeconfig = tmp / "kubeconfig"  # the demo reads its files before it asks the cluster anything
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    snap = ["--snapshot", str(SNAPSHOT)]
    return {
        "serve --config": ["serve", *snap, "--config", str(bomb)],
        "serve --snapshot": ["serve", "--snapshot", str(snapshot_yaml)],
        "serve --graph": ["serve", *snap, "--graph", str(bomb)],
        "serve --profile": ["serve", *snap, "--profile", str(bomb)],
        "explain --pod": ["explain", *snap, "--pod", str(bomb)],
        "explain --config": ["explain", *snap, "--pod", str(EXAMPLES / "ops-team.yaml"), "--config", str(bomb)],
        "profile --config": ["profile", "--once", "--out", str(tmp / "g.yaml"), "--config", str(bomb)],
        "predict evaluate --declared": [
            *("predict", "evaluate", "--usage", str(usage), "--resource", "cpu", "--declared", str(bomb))
        ],
        "demo --examples": ["demo", "--kubeconfig", str(kubeconfig), "--examples", str(examples)],
    }


@pytest.mark.parametrize(
    "entry",
    [
        "serve --config",
        "serve --snapshot",
        "serve --graph",
        "serve --profile",
        "explain --pod",
        "explain --config",
        "profile --config",
        "predict evaluate --declared",
        "demo --examples",
    ],
)
def test_an_alias_bomb_through_each_command_is_an_error_naming_the_file(tmp_path: Path, entry: str) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    args = _entry_points(tmp_path, bomb)[entry]
    named = tmp_path / "examples" / "ops-team.yaml" if entry == "demo --examples" else bomb
    if entry == "serve --snapshot":
        named = tmp_path / "snapshot.yaml"
    runner.invoke(app, args)  # imports whatever the command loads lazily, outside the measure
    tracemalloc.start()
    try:
        result = runner.invoke(app, args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert f"{named}: line 1, column 4: YAML anchor &a is not accepted" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert peak < PEAK_BYTES, f"{peak / 2**20:.1f} MiB allocated refusing {entry}"
