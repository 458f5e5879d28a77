"""How a request field is declared once for every front end.

A mode's request class declares each field with `request_field(...)`: its label and help (the
page's input, the CLI's --help, the API docs), whether it is an input file and of which kind,
and how it is written as text (the CLI flag's value and a batch file's cell: `size` = 640x480,
`bbox` = 8,8,56,40, `outpaint_directions` = left,right, a LoRA = name:0.8:high). The CLI flags,
the API endpoints' file parameters, the batch-file columns and the page's error slots are all
derived from these declarations.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import field

from wan_studio.errors import RequestError

FILE_KINDS = ("image", "video", "audio", "image-or-video")


def request_field(default=None, *, label: str, help: str = "", file: str | None = None, text: str | None = None,
                  flag: str | None = None, multiple: bool = False, choices: tuple | dict | None = None,
                  bounds: tuple | None = None, page: bool = True, added_later: bool = False, factory=None):
    """A dataclass field with what the page, the CLI, the API and batch files need to offer it.

    file: the input file's kind (FILE_KINDS); multiple: a list of files (or values) the CLI repeats;
    text: how the value is written as text (a name of TEXT_FORMS); flag: the CLI flag when it is not
    --field-name; choices: the only values it takes (of a list: each item), checked when the request
    is built, as a tuple or as {value: the page's words for it}; bounds: (low, high, step) of the
    page's slider; page: False for a field the page leaves to its default (the CLI and API still take it);
    added_later: a file input added after its mode's API endpoint was released: the endpoint takes it
    after `options`, optional, so the calls of earlier clients (by position or by name) still work.
    """
    if file is not None and file not in FILE_KINDS:
        raise ValueError(f"unknown file kind {file!r}")
    metadata = {"label": label, "help": help, "file": file, "text": text, "flag": flag, "multiple": multiple,
                "choices": choices, "bounds": bounds, "page": page, "added_later": added_later}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# -- text forms: the CLI's spellings, also accepted in batch-file cells -----------------------------
def whole_numbers(text: str, name: str = "value") -> list[int]:
    try:
        return [int(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        raise RequestError(name, f"{name} must be whole numbers separated by commas; got {text!r}.") from None


def words(text: str, name: str = "value") -> list[str]:
    return [w.strip() for w in str(text).replace(";", ",").split(",") if w.strip()]


def size(text: str, name: str = "size") -> tuple[int, int]:
    try:
        width, height = str(text).lower().replace(" ", "").split("x")
        return int(width), int(height)
    except ValueError:
        raise RequestError(name, f"Size must look like 832x480 (width x height); got {text!r}.") from None


def lora(text: str, name: str = "loras") -> dict:
    from wan_studio.loras import parse_cli_spec

    return parse_cli_spec(text)


def yes_no(text: str, name: str = "value") -> bool:
    answer = str(text).strip().lower()
    if answer in ("1", "true", "yes", "on"):
        return True
    if answer in ("0", "false", "no", "off", ""):
        return False
    raise RequestError(name, f"{name} must be yes or no (true / false); got {text!r}.")


TEXT_FORMS = {"whole-numbers": whole_numbers, "words": words, "size": size, "lora": lora, "yes-no": yes_no}


# -- reading the declarations --------------------------------------------------------------------
def meta(cls, name: str) -> dict:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return dict(f.metadata)
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def label(cls, name: str) -> str:
    return meta(cls, name).get("label") or name.replace("_", " ").capitalize()


def file_fields_of(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("file"))


@functools.cache
def _type_hints(cls) -> dict:  # (typing resolves every annotation's string on each call: the CLI asks ~80 times)
    return typing.get_type_hints(cls)


def value_type(cls, name: str) -> type:
    """The field's scalar Python type (int, float, str) from its annotation; lists give their item type."""
    hint = _type_hints(cls)[name]
    kinds = [k for k in (typing.get_args(hint) or (hint,)) if k is not type(None)]
    for kind in kinds:
        origin = typing.get_origin(kind) or kind
        if origin is list:
            inner = typing.get_args(kind)
            return inner[0] if inner else str
        if origin in (bool, int, float, str):
            return origin
    return str


class FileFields:
    """`cls.file_fields`: the names of the fields declared with a file kind (for copies and checks)."""

    def __get__(self, obj, cls) -> tuple[str, ...]:
        if not dataclasses.is_dataclass(cls):  # read while @dataclass processes the class itself
            return ()
        return file_fields_of(cls)
