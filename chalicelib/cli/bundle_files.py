"""Read an agent bundle from disk (one YAML/JSON file, or a folder of them) and say where each item is.

A folder forms one bundle: its files (sorted by path, `tests/` folders and `*.cassette.yaml` left
out) are merged by top-level key: lists (rules, templates, ...) are concatenated, mappings (agent,
channels) are merged key by key. Every item path of the merged document (`rules[3].templates[0]`)
maps back to the file and line it came from, using the node start marks of `yaml.compose`, so a
validation error reads `retail.yaml:42: rules[3].templates[0]: unknown template "refund_fb"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chalicelib.cli.common import CHECK_FAILED, USAGE_ERROR, CliFailure
from chalicelib.domain.bundle import AgentBundle, parse_bundle
from chalicelib.domain.errors import InvalidInput

SUFFIXES = (".yaml", ".yml", ".json")
_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")

Where = tuple[str, int]  # (file as given, 1-based line)


@dataclass
class BundleSource:
    """The merged document of a bundle and where each of its items was written."""

    document: dict[str, Any]
    origin: str  # the path the user gave
    places: dict[tuple[str | int, ...], Where] = field(default_factory=dict)

    def where(self, path: str) -> Where:
        """The file and line of an item path, or of its closest written ancestor."""
        parts = split_path(path)
        while parts:
            if parts in self.places:
                return self.places[parts]
            parts = parts[:-1]
        return self.places.get((), (self.origin, 1))

    def describe(self, path: str, message: str) -> str:
        file, line = self.where(path)
        return f"{file}:{line}: {path or '(bundle)'}: {message}"


def split_path(path: str) -> tuple[str | int, ...]:
    """`rules[3].templates[0]` -> ("rules", 3, "templates", 0)."""
    return tuple(int(index) if index else name for index, name in _PART.findall(path))


def read_source(path: Path) -> BundleSource:
    """The bundle document at `path` (file or folder). Raises CliFailure: exit 2 when nothing can be
    read there, exit 1 when a file is not valid YAML or the folder's files clash."""
    if path.is_dir():
        files = bundle_files(path)
        if not files:
            raise CliFailure(f"{path}: no .yaml, .yml or .json files in this folder")
        return _merge([(str(file), load_yaml(file)) for file in files], origin=str(path))
    if not path.is_file():
        raise CliFailure(f"{path}: no such file or folder")
    return _merge([(str(path), load_yaml(path))], origin=str(path))


def bundle_files(folder: Path) -> list[Path]:
    return sorted(
        file
        for file in folder.rglob("*")
        if file.is_file()
        and file.suffix in SUFFIXES
        and not file.name.endswith(".cassette.yaml")
        and "tests" not in file.relative_to(folder).parts[:-1]
    )


def load_bundle(path: Path) -> tuple[AgentBundle, BundleSource]:
    """Read and validate exactly as the API does (parse_bundle). Raises CliFailure (exit 1) listing
    every problem as `file:line: path: message`, one per line."""
    source = read_source(path)
    try:
        return parse_bundle(source.document), source
    except InvalidInput as exc:
        raise CliFailure(problems_text(source, exc), CHECK_FAILED) from None


def problems_text(source: BundleSource, error: InvalidInput) -> str:
    """Every problem of an InvalidInput (from parse_bundle or a 422 body) as `file:line: path: message`."""
    problems = error.details.get("errors") or [{"path": "", "message": error.message}]
    lines = [source.describe(str(item.get("path", "")), str(item.get("message", ""))) for item in problems]
    noun = "problem" if len(lines) == 1 else "problems"
    return f"{source.origin}: {len(lines)} {noun}\n" + "\n".join(lines)


def canonical_yaml(document: object) -> str:
    """The bundle as stable, readable YAML: what pull writes and diff compares."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def load_yaml(file: Path, exit_code: int = CHECK_FAILED) -> tuple[Any, yaml.Node | None]:
    """The data and the composed node tree of one YAML/JSON file. Raises CliFailure with the line of a
    syntax error (exit `exit_code`), or exit 2 when the file cannot be read."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliFailure(f"{file}: cannot read it ({exc.__class__.__name__})", USAGE_ERROR) from None
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CliFailure(f"{file}{line}: not valid YAML: {exc.problem or exc.context}", exit_code) from None
    except yaml.YAMLError as exc:
        raise CliFailure(f"{file}: not valid YAML: {exc}", exit_code) from None


def _merge(parts: list[tuple[str, tuple[Any, yaml.Node | None]]], origin: str) -> BundleSource:
    if len(parts) == 1:
        name, (document, node) = parts[0]
        source = BundleSource(document=document if isinstance(document, dict) else {}, origin=name)
        if not isinstance(document, dict):
            raise CliFailure(f"{name}:1: an agent bundle must be a mapping with at least `agent`", CHECK_FAILED)
        source.places[()] = (name, 1)
        record_places(source.places, node, (), name)
        return source
    merged: dict[str, Any] = {}
    source = BundleSource(document=merged, origin=origin)
    source.places[()] = (parts[0][0], 1)
    for name, (document, node) in parts:
        if document is None:
            continue
        if not isinstance(document, dict) or not isinstance(node, yaml.MappingNode):
            raise CliFailure(
                f"{name}:1: each file of a bundle folder must be a mapping of top-level keys", CHECK_FAILED
            )
        for key_node, value_node in node.value:
            key = key_node.value
            _merge_section(source, key, document.get(key), value_node, name)
    return source


def _merge_section(source: BundleSource, key: str, value: Any, node: yaml.Node, name: str) -> None:
    """Merge one top-level section of file `name` into the document merged so far."""
    merged = source.document
    line = node.start_mark.line + 1
    if key not in merged:
        merged[key] = list(value) if isinstance(value, list) else (dict(value) if isinstance(value, dict) else value)
        source.places[(key,)] = (name, line)
        record_places(source.places, node, (key,), name)
        return
    current = merged[key]
    if isinstance(current, list) and isinstance(value, list) and isinstance(node, yaml.SequenceNode):
        offset = len(current)
        current.extend(value)
        for position, item in enumerate(node.value):
            record_places(source.places, item, (key, offset + position), name)
            source.places[(key, offset + position)] = (name, item.start_mark.line + 1)
        return
    if isinstance(current, dict) and isinstance(value, dict) and isinstance(node, yaml.MappingNode):
        for sub_key, sub_node in node.value:
            if sub_key.value in current:
                first, _ = source.where(f"{key}.{sub_key.value}")
                raise CliFailure(
                    f"{name}:{sub_key.start_mark.line + 1}: {key}.{sub_key.value}: also defined in {first}",
                    CHECK_FAILED,
                )
            current[sub_key.value] = value[sub_key.value]
            record_places(source.places, sub_node, (key, sub_key.value), name)
            source.places[(key, sub_key.value)] = (name, sub_key.start_mark.line + 1)
        return
    first, _ = source.where(key)
    raise CliFailure(f"{name}:{line}: {key}: also defined in {first}, and the two cannot be merged", CHECK_FAILED)


def record_places(
    places: dict[tuple[str | int, ...], Where],
    node: yaml.Node | None,
    prefix: tuple[str | int, ...],
    name: str,
) -> None:
    """Walk a composed node and note the start line of every item under `prefix`."""
    if node is None:
        return
    if prefix not in places:
        places[prefix] = (name, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            places[path] = (name, key_node.start_mark.line + 1)  # the key's line reads best
            record_places(places, value_node, path, name)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            record_places(places, item, (*prefix, position), name)
