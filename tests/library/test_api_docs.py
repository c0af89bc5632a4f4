"""The API reference cannot drift from the code.

Every argument of every public component has a docstring in the code (the
text Pulumi also puts in the schema other languages see) and a row in
docs/api.md, and docs/api.md is exactly what scripts/gen-api-docs writes.
"""

from __future__ import annotations

import importlib
import re
import typing

import pytest

import hardened_do
from tests.conftest import ROOT

API_MD = ROOT / "docs" / "api.md"


gen = importlib.import_module("scripts.gen_api_docs")
COMPONENTS = gen.public_components()


def _documented_types():
    """(component, TypedDict) for each args type and the records it names."""
    for component in COMPONENTS:
        for typ in gen.referenced_types(gen.args_type(component), []):
            if typing.is_typeddict(typ):
                yield component, typ


def _section(markdown: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = markdown.index(heading + "\n")
    stop = re.compile(rf"^#{{1,{len(level)}}} ", re.M)
    following = stop.search(markdown, start + len(heading) + 1)
    return markdown[start: following.start() if following else len(markdown)]


def test_every_public_component_is_found():
    names = {c.__name__ for c in COMPONENTS}
    assert {"AdminSshKeys", "Network", "HardenedHost", "HardenedFleet"} <= names


@pytest.mark.parametrize(("component", "typ"), list(_documented_types()), ids=lambda x: x.__name__)
def test_every_public_argument_has_a_docstring_in_code(component, typ):
    fields = gen.field_docs(typ)
    assert set(fields) == set(typ.__annotations__), f"{typ.__name__}: fields not found in its source"
    missing = [name for name, (_, doc) in fields.items() if not (doc or "").strip()]
    assert not missing, f"{component.__name__}: {typ.__name__} fields without a docstring: {missing}"


@pytest.mark.parametrize(("component", "typ"), list(_documented_types()), ids=lambda x: x.__name__)
def test_every_public_argument_is_in_api_md(component, typ):
    section = _section(API_MD.read_text(), f"#### `{typ.__name__}`")
    missing = [name for name in typ.__annotations__ if f"| `{name}` |" not in section]
    assert not missing, f"docs/api.md, {typ.__name__}: no row for {missing}; run scripts/gen-api-docs"


def test_every_public_name_is_in_api_md():
    text = API_MD.read_text()
    missing = [name for name in hardened_do.__all__ if name != "__version__" and f"`{name}" not in text]
    assert not missing, f"docs/api.md does not mention {missing}; run scripts/gen-api-docs"


def test_api_md_is_what_the_generator_writes():
    assert API_MD.read_text() == gen.render(), "docs/api.md is stale; run scripts/gen-api-docs"


def test_a_missing_docstring_is_caught(tmp_path, monkeypatch):
    """The check above can fail: a TypedDict field without a docstring is reported."""
    source = tmp_path / "undocumented_args.py"
    source.write_text(
        "from typing import TypedDict\n\n"
        "class UndocumentedArgs(TypedDict):\n"
        "    documented: str\n"
        '    """Has one."""\n'
        "    bare: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import undocumented_args

    fields = gen.field_docs(undocumented_args.UndocumentedArgs)
    assert fields["documented"][1] == "Has one." and fields["bare"][1] is None
