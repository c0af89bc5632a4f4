"""Write docs/api.md from the docstrings of hardened_do's public API.

The reference is generated, not hand-kept: the text of every argument is the
docstring under the field in the code (the same text Pulumi puts in the
schema other languages see), so the two cannot drift.
tests/library/test_api_docs.py fails when a public component argument lacks
a docstring or docs/api.md is stale.

    scripts/gen-api-docs           # rewrite docs/api.md
    scripts/gen-api-docs --check   # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import argparse
import ast
import enum
import functools
import inspect
import operator
import sys
import textwrap
import typing
from pathlib import Path

import pulumi

import hardened_do

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"


# -- reading the code -----------------------------------------------------------


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def field_docs(cls: type) -> dict[str, tuple[str, str | None]]:
    """Field name -> (annotation as written, docstring) for a class body.

    Attribute docstrings are not kept at run time; they are read from the
    source, as Pulumi's schema analyzer does. TypedDict parents are not in
    the MRO, so `__orig_bases__` is followed as well.
    """
    out: dict[str, tuple[str, str | None]] = {}
    parents = [b for b in getattr(cls, "__orig_bases__", ()) if typing.is_typeddict(b)]
    parents += [b for b in cls.__mro__[1:] if b not in (object, dict, pulumi.ComponentResource, pulumi.Resource)]
    for parent in parents:
        for name, entry in field_docs(parent).items():
            out.setdefault(name, entry)
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = None
            following = body[i + 1] if i + 1 < len(body) else None
            if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                doc = following.value.value
            if not node.target.id.startswith("_"):
                out[node.target.id] = (ast.unparse(node.annotation), doc)
    return out


def _display_type(annotation: str) -> str:
    for wrapper in ("NotRequired[", "Required["):
        if annotation.startswith(wrapper):
            annotation = annotation[len(wrapper):-1]
    return annotation.replace("'", "").replace('"', "")


def is_required(td: type, annotation: str) -> bool:
    """Read from the annotation as written: under postponed evaluation
    Python 3.11 does not see NotRequired[...] in a string, so
    `__required_keys__` would call every field required."""
    if annotation.startswith("NotRequired["):
        return False
    if annotation.startswith("Required["):
        return True
    return getattr(td, "__total__", True)


def args_type(component: type) -> type:
    annotation = inspect.get_annotations(component.__init__)["args"]
    if isinstance(annotation, str):  # postponed annotations
        annotation = vars(sys.modules[component.__module__])[annotation]
    return annotation


def referenced_types(typ: type, seen: list[type]) -> list[type]:
    """`typ` and the TypedDicts and enums its fields name, depth first.

    Names are read from the annotations as written and looked up in the
    defining module: evaluating them would trip over pulumi.Input's forward
    reference to Output.
    """
    if typ in seen:
        return seen
    seen.append(typ)
    if not typing.is_typeddict(typ):
        return seen
    namespace = vars(sys.modules[typ.__module__])
    for annotation, _ in field_docs(typ).values():
        for node in ast.walk(ast.parse(annotation, mode="eval")):
            found = namespace.get(node.id) if isinstance(node, ast.Name) else None
            if isinstance(found, type) and (typing.is_typeddict(found) or issubclass(found, enum.Enum)):
                referenced_types(found, seen)
    return seen


def public_components() -> list[type]:
    return [
        obj for name in hardened_do.__all__
        if isinstance(obj := getattr(hardened_do, name), type) and issubclass(obj, pulumi.ComponentResource)
    ]


def component_token(component: type) -> str:
    source = inspect.getsource(component.__init__)
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
                and node.args):
            first = node.args[0]
            if isinstance(first, ast.Constant):
                return first.value
            if isinstance(first, ast.JoinedStr):
                return ast.unparse(first)[2:-1].replace("{PACKAGE}", "hardened-do")
    return "?"


# -- writing markdown -------------------------------------------------------------


def _cell(text: str | None) -> str:
    return _one_line(text).replace("|", "\\|") or "—"


def _code(text: str) -> str:
    # GitHub tables split cells at every unescaped pipe, code spans included.
    return "`" + text.replace("|", "\\|") + "`"


def _typeddict_table(td: type) -> list[str]:
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, (annotation, doc) in field_docs(td).items():
        required = "yes" if is_required(td, annotation) else "no"
        lines.append(f"| `{name}` | {_code(_display_type(annotation))} | {required} | {_cell(doc)} |")
    return lines


def _literal_aliases(td: type, documented: set) -> list[str]:
    """`AuditMode = Literal[...]`-style names a TypedDict's fields use."""
    namespace = vars(sys.modules[td.__module__])
    out = []
    for annotation, _ in field_docs(td).values():
        for node in ast.walk(ast.parse(annotation, mode="eval")):
            alias = namespace.get(node.id) if isinstance(node, ast.Name) else None
            if typing.get_origin(alias) is typing.Literal and node.id not in documented:
                documented.add(node.id)
                values = " | ".join(repr(v) for v in typing.get_args(alias))
                out += [f"`{node.id}` is one of `{values}`.", ""]
    return out


def _outputs_table(component: type) -> list[str]:
    fields = field_docs(component)
    if not fields:
        return []
    lines = ["| output | type | description |", "|---|---|---|"]
    for name, (annotation, doc) in fields.items():
        lines.append(f"| `{name}` | {_code(annotation)} | {_cell(doc)} |")
    return lines


def _enum_table(en: type[enum.Enum]) -> list[str]:
    docs = field_docs_enum(en)
    lines = ["| value | meaning |", "|---|---|"]
    for member in en:
        lines.append(f"| `{member.value}` | {_cell(docs.get(member.name))} |")
    return lines


def field_docs_enum(en: type) -> dict[str, str | None]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(en)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    out = {}
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            following = body[i + 1] if i + 1 < len(body) else None
            doc = following.value.value if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)) else None
            out[node.targets[0].id] = doc
    return out


def _strip_annotated(annotation: object) -> object:
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if args and any(typing.get_origin(a) is typing.Annotated for a in args):
        stripped = tuple(_strip_annotated(a) for a in args)
        if typing.get_origin(annotation) in (tuple, list, dict):
            return typing.get_origin(annotation)[stripped]
        return functools.reduce(operator.or_, stripped)
    return annotation


def _model_type(annotation: object) -> str:
    """A pydantic field's type as a reader would write it."""
    # Validators attached with Annotated are how, not what: show the base type.
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    text = str(annotation).replace("typing.", "")
    for module in {getattr(a, "__module__", "") for a in typing.get_args(annotation)} - {"", "builtins", "typing"}:
        text = text.replace(f"{module}.", "")
    return text


def _model_table(model: type, skip: tuple[str, ...] = ()) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        if field.is_required():
            default = "required"
        elif field.default_factory is not None:
            default = "see below"
        elif field.default == ():
            default = "`[]`"
        else:
            default = f"`{field.default!r}`"
        lines.append(f"| `{name}` | {_code(_model_type(field.annotation))} | {default} | {_cell(field.description)} |")
    return lines


def _signature(fn) -> str:
    """The signature as written (annotations are strings under postponed evaluation)."""
    sig = inspect.signature(fn)
    parts, star_done = [], False
    for param in sig.parameters.values():
        if param.kind is param.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = param.name
        if param.annotation is not param.empty:
            text += f": {param.annotation if isinstance(param.annotation, str) else inspect.formatannotation(param.annotation)}"
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        parts.append(text)
    returns = sig.return_annotation
    ret = "" if returns is sig.empty else f" -> {returns if isinstance(returns, str) else inspect.formatannotation(returns)}"
    return f"({', '.join(parts)}){ret}"


def _function(name: str) -> list[str]:
    fn = getattr(hardened_do, name)
    doc = inspect.getdoc(fn) or ""
    return [f"### `{name}{_signature(fn)}`", "", _one_line(doc.split("\n\n")[0]), ""]


def render() -> str:
    model = hardened_do.StackConfig
    config_mod = sys.modules[model.__module__]
    out = [
        "# hardened-do API reference",
        "",
        "<!-- Generated by scripts/gen-api-docs from the docstrings in the code: edit those, then",
        "     regenerate. tests/library/test_api_docs.py fails when this file is stale. -->",
        "",
        f"Package `pulumi-hardened-do` {hardened_do.__version__}, imported as `hardened_do`. The public API is",
        "exactly the names below (`hardened_do.__all__`); modules under `hardened_do.*` are",
        "implementation detail.",
        "",
        "```python",
        "import hardened_do as hd",
        "```",
        "",
        "Public names: " + ", ".join(f"`{n}`" for n in hardened_do.__all__ if n != "__version__") + ".",
        "",
        "## Configuration",
        "",
    ]
    for name in ("parse_stack_config", "load_from_pulumi", "load_stack_file"):
        out += _function(name)
    out += [
        "`StackConfig` is the validated, immutable stack model every StackConfig-based component",
        "takes; `ConfigError` (a `ValueError`) lists one problem per line, naming the key and the",
        "fix, and never echoes key material. `SUPPORTED_IMAGES` are the image slugs the hardening",
        f"is tested on: {', '.join(f'`{i}`' for i in hardened_do.SUPPORTED_IMAGES)}.",
        "",
        "### Keys of `parse_stack_config`",
        "",
        "`name_prefix` is the keyword argument; everything else is a key of the dict.",
        "",
        *_model_table(model, skip=("name_prefix",)),
        "",
    ]
    for sub in ("Role", "Service", "Host", "UnattendedUpgrades"):
        cls = getattr(config_mod, sub)
        where = {"Role": "each value of `roles`", "Service": "each entry of a role's `services`",
                 "Host": "each entry of `hosts`", "UnattendedUpgrades": "`unattended_upgrades`"}[sub]
        out += [f"#### {sub} ({where})", "", *_model_table(cls), ""]

    out += ["## Components", ""]
    documented: set[type] = set()
    for component in public_components():
        args = args_type(component)
        out += [
            f"### `{component.__name__}`",
            "",
            f"Token `{component_token(component)}`. {_one_line(component.__doc__)}",
            "",
            f"`{component.__name__}(name: str, args: {args.__name__}, opts: pulumi.ResourceOptions | None = None)`",
            "",
            f"#### `{args.__name__}`",
            "",
            *_typeddict_table(args),
            "",
        ]
        out += _literal_aliases(args, documented)
        outputs = _outputs_table(component)
        if outputs:
            out += ["Outputs:", "", *outputs, ""]
        for nested in referenced_types(args, [])[1:]:
            if nested in documented:
                continue
            documented.add(nested)
            intro = [_one_line(nested.__doc__), ""] if nested.__doc__ else []
            if typing.is_typeddict(nested):
                out += [f"#### `{nested.__name__}`", "", *intro, *_typeddict_table(nested), ""]
            else:
                out += [f"#### `{nested.__name__}` (enum)", "", *intro, *_enum_table(nested), ""]

    out += ["## Functions", ""]
    for name in ("ssh_command", "render_user_data", "build_cloud_config"):
        out += _function(name)

    out += [
        "## Other languages",
        "",
        "Components whose arguments a Pulumi schema can express are served to every Pulumi",
        "language by the source-based plugin in `hardened_do/provider` (`PulumiPlugin.yaml`):",
        "add it under `packages:` (YAML) or with `pulumi package add <path>`. Property names",
        "are the camelCase forms of the fields above (`admin_ssh_keys` → `adminSshKeys`).",
        "Served: " + ", ".join(f"`hardened-do:index:{c.__name__}`" for c in _served()) + ".",
        "",
    ]
    return "\n".join(out).rstrip() + "\n"


def _served() -> list[type]:
    from hardened_do.provider import COMPONENTS

    return list(COMPONENTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date; run scripts/gen-api-docs", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
