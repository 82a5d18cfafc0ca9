"""YAML that remembers where each key was written, and refuses what YAML lets slip.

Errors in a playbook must name the line. PyYAML forgets positions once it has built
Python objects, so mappings and sequences are built as `YamlMap`/`YamlList`, which keep
the line of every key and item. Two YAML traps are refused outright: a key written twice
(PyYAML silently keeps the last one) and a key that YAML 1.1 reads as a boolean
(`on:`, `yes:`, `no:`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSyntaxError(ValueError):
    """The text is not valid YAML, or uses a construct playbooks refuse; `line` is 1-based."""

    def __init__(self, problem: str, line: int | None, key: str | None = None) -> None:
        self.problem = problem
        self.line = line
        self.key = key
        super().__init__(problem)


class YamlMap(dict[str, Any]):
    """A mapping that knows the line of each of its keys."""

    line: int
    key_lines: dict[str, int]


class YamlList(list[Any]):
    """A sequence that knows the line of each of its items."""

    line: int
    item_lines: list[int]


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    # Keys written in this mapping, as opposed to those merged in with `<<: *anchor`,
    # which a written key may override: only a written key written twice is a mistake.
    written = {id(key) for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)
    data = YamlMap()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    seen_written: set[str] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, bool):
            raise YamlSyntaxError(
                f"the key {key_node.value!r} is read by YAML as {str(key).lower()}, not as text; "
                "quote it, or use `when:` for a playbook's trigger",
                line,
            )
        if not isinstance(key, str):
            raise YamlSyntaxError(f"keys must be text, got {key!r}", line)
        if id(key_node) in written:
            if key in seen_written:
                raise YamlSyntaxError(
                    f"the key {key!r} is written twice (first on line {data.key_lines[key]})", line, key
                )
            seen_written.add(key)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line
    return data


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> YamlList:
    data = YamlList(loader.construct_object(item, deep=True) for item in node.value)
    data.line = node.start_mark.line + 1
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    return data


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


def load_yaml(text: str, skip: frozenset[str] = frozenset()) -> Any:
    """Parse one YAML document into plain data whose maps and lists know their lines.

    Top-level keys in `skip` are parsed (by the C parser, fast) but not turned into Python
    objects: the Lambda has no use for a playbook's inline tests, the bulk of a file.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if skip and isinstance(node, yaml.MappingNode):
            node.value = [(k, v) for k, v in node.value if not (isinstance(k, yaml.ScalarNode) and k.value in skip)]
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise YamlSyntaxError(f"YAML syntax error: {problem}", line) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(f"YAML error: {error}", None) from None
    finally:
        loader.dispose()


def line_of(document: Any, path: Sequence[str | int]) -> int | None:
    """The line of the deepest part of `path` found in `document` (1-based)."""
    line = getattr(document, "line", None)
    node = document
    for part in path:
        if isinstance(node, YamlMap) and isinstance(part, str) and part in node:
            line = node.key_lines[part]
            node = node[part]
        elif isinstance(node, YamlList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def format_path(path: Sequence[str | int]) -> str:
    """`["steps", 0, "with"]` -> `steps[0].with`, as people write it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
