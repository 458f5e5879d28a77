"""`generate`'s flags, derived from the request classes' field declarations (requests/fields.py):
one flag per field, its help from the declaration, the modes that take it named in the help."""

from __future__ import annotations

import argparse
import dataclasses

from wan_studio.errors import RequestError
from wan_studio.requests import GenerationRequest, request_types
from wan_studio.requests import fields as declared_fields

NOT_FLAGS = {"width", "height", "extra"}  # width and height come together as --size WxH


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _converter(name: str, form=None, kind: type = str):
    """The text a user types -> the field's value (RequestError becomes argparse's usage message)."""

    def convert(text: str):
        try:
            return form(text, name) if form else kind(text)
        except RequestError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def _add(group, cls, f: dataclasses.Field, help_text: str) -> None:
    meta = f.metadata
    options = dict(dest=f.name, help=help_text, default=None)
    if declared_fields.value_type(cls, f.name) is bool:  # a switch: --init-first-frame
        group.add_argument(_flag(f), dest=f.name, help=help_text, default=None, action="store_true")
        return
    listed = bool(meta.get("choices")) and not meta.get("text")  # a text form (e.g. left,right) is checked after
    if listed:
        options["choices"] = list(meta["choices"])
    if meta.get("multiple"):
        options["action"] = "append"
    if not listed:
        form = declared_fields.TEXT_FORMS.get(meta.get("text"))
        options["type"] = _converter(f.name, form, declared_fields.value_type(cls, f.name))
    if meta.get("file"):
        options["metavar"] = "FILE"
    group.add_argument(_flag(f), **options)


def add_field_flag(parser, cls, name: str) -> None:
    """One field's flag, from its declaration, on a command of its own (`upscale --target`)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    _add(parser, cls, f, f.metadata.get("help") or None)


def mode_fields() -> dict[str, list[tuple[str, type, dataclasses.Field]]]:
    """Each mode-specific field name -> the (mode, class, field) that declare it."""
    shared = {f.name for f in dataclasses.fields(GenerationRequest)}
    found: dict[str, list] = {}
    for mode, cls in request_types().items():
        for f in dataclasses.fields(cls):
            if f.name not in shared:
                found.setdefault(f.name, []).append((mode, cls, f))
    return found


def add_request_flags(gen: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(GenerationRequest):
        if f.name not in NOT_FLAGS:
            _add(gen, GenerationRequest, f, f.metadata.get("help") or None)
    gen.add_argument("--size", type=_converter("size", declared_fields.size), help="WIDTHxHEIGHT, e.g. 832x480")
    gen.add_argument("--duration", help="the length in seconds (20, 20s or 1:30) instead of --frames; past what the "
                                        "checkpoint makes at once (about 5 s) the video is made in windows, up to 60 s")
    inputs = gen.add_argument_group("mode inputs (file paths and settings; each mode takes the ones it needs)")
    for name, uses in mode_fields().items():
        by_help: dict[str, list[str]] = {}
        for mode, _, f in uses:
            by_help.setdefault(f.metadata.get("help") or f.metadata.get("label"), []).append(mode)
        help_text = "; ".join(f"{', '.join(modes)}: {text}" for text, modes in by_help.items())
        _add(inputs, uses[0][1], uses[0][2], help_text)


def request_values(args: argparse.Namespace, cls) -> dict:
    """The request's keyword arguments from the parsed flags; a flag of another mode is refused."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {name: value for name, value in vars(args).items()
              if name in names and name not in NOT_FLAGS and value is not None}
    if args.size:
        values["width"], values["height"] = args.size
    for name, uses in mode_fields().items():
        if name not in names and getattr(args, name, None) not in (None, []):
            raise RequestError(name, f"{_flag(uses[0][2])} is not an input of {cls.mode}.")
    return values
