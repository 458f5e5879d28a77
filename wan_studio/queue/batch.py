"""Batch files: many jobs at once from JSON or CSV, validated as a whole before any is queued."""

from __future__ import annotations

import csv
import dataclasses
import json
import types
import typing
from pathlib import Path

from wan_studio.errors import RequestError, StudioError
from wan_studio.requests import (
    GenerationRequest,
    absolutize_inputs,
    fields,
    job_types,
    request_from_dict,
    request_types,
)


def load_batch(path: Path | str, settings=None) -> list[GenerationRequest]:
    """Requests from a JSON (a list, or {"jobs": [...]}) or CSV (a header of field names) batch file.

    Every row is validated before any is returned; the first bad one raises RequestError whose
    message starts with "row N:" (the 1-based row for JSON, the file line for CSV). A row without a
    mode is T2V; without a model, the machine's default for the mode when `settings` is given.
    Relative input paths are relative to the batch file's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise RequestError("batch", f"Batch file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        rows = _json_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise RequestError("batch", f"{path.name}: a batch file must be .json or .csv.")
    requests = []
    for label, data in rows:
        try:
            if not isinstance(data, dict):
                raise RequestError("batch", f"expected an object of request fields, got {type(data).__name__}")
            requests.append(_request_from_row(data, path.parent, settings))
        except RequestError as exc:
            raise RequestError(exc.field, f"row {label}: {exc.message}") from exc
        except (StudioError, TypeError, ValueError) as exc:
            raise RequestError("batch", f"row {label}: {exc}") from exc
    if not requests:
        raise RequestError("batch", f"The batch file {path.name} has no jobs.")
    return requests


def _request_from_row(data: dict, base: Path, settings) -> GenerationRequest:
    data = dict(data)
    data.setdefault("mode", "t2v")
    if not data.get("model") and settings is not None and data["mode"] in request_types():  # a generation's
        from wan_studio.catalog.defaults import default_model_id

        data["model"] = default_model_id(data["mode"], settings)
    cls = request_types().get(data["mode"])
    if cls is not None:
        data = cli_spellings(data, cls)
    return request_from_dict(absolutize_inputs(data, base)).prepare()  # a bad file is named with its row


def cli_spellings(data: dict, cls) -> dict:
    """Cells written as on the command line: size = 640x480, bbox = 8,8,56,40, outpaint_directions =
    left,right, loras = style:0.8;detail:0.5:low (several separated by ';')."""
    data = dict(data)
    if "size" in data:
        if data.get("width") is not None or data.get("height") is not None:
            raise RequestError("size", "Give either size or width and height, not both.")
        data["width"], data["height"] = fields.size(data.pop("size"))
    for f in dataclasses.fields(cls):
        form = fields.TEXT_FORMS.get(f.metadata.get("text"))
        value = data.get(f.name)
        if form is None or not isinstance(value, str) or value.strip().startswith(("[", "{")):
            continue
        if f.metadata.get("multiple"):
            data[f.name] = [form(part.strip(), f.name) for part in value.split(";") if part.strip()]
        else:
            data[f.name] = form(value, f.name)
    return data


def _json_rows(path: Path) -> list[tuple[int, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("batch", f"{path.name} is not valid JSON ({exc}).") from exc
    if isinstance(data, dict) and "jobs" in data:
        data = data["jobs"]
    if not isinstance(data, list):
        raise RequestError("batch", f"{path.name} must hold a list of requests, or {{\"jobs\": [...]}}.")
    return [(n, row) for n, row in enumerate(data, start=1)]


def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = None
        last_line = 0
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num  # a quoted cell may span lines
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                continue
            if len(cells) > len(header):
                raise RequestError("batch",
                                   f"row {line}: {len(cells)} cells but the header names {len(header)} fields.")
            raw = {name: cell for name, cell in zip(header, cells) if name and cell.strip() != ""}
            try:
                rows.append((line, _convert_csv_cells(raw)))
            except RequestError as exc:
                raise RequestError(exc.field, f"row {line}: {exc.message}") from exc
    return rows


def _convert_csv_cells(raw: dict[str, str]) -> dict:
    mode = raw.get("mode", "t2v").strip()
    cls = job_types().get(mode)
    if cls is None:
        return raw  # request_from_dict names the known modes
    hints = typing.get_type_hints(cls)
    spelled = {f.name for f in dataclasses.fields(cls) if f.metadata.get("text")}  # cli_spellings reads these
    converted = {}
    for name, text in raw.items():
        hint = hints.get(name) if name not in spelled else None
        converted[name] = _convert_cell(name, text, hint) if hint is not None else text
    return converted


def _convert_cell(name: str, text: str, hint) -> object:
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kinds = set(typing.get_args(hint)) if union else {hint}  # list[str] is a list, not a str
    kinds.discard(type(None))
    origins = {typing.get_origin(k) or k for k in kinds}
    value = text.strip()
    if str in origins:
        return text
    try:
        if bool in origins:
            return value.lower() in {"1", "true", "yes", "on"}
        if int in origins:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if float in origins:
            return float(value)
    except ValueError:
        kind = "a whole number" if int in origins else "a number"
        raise RequestError(name, f"{name} must be {kind}; got {text!r}.") from None
    if dict in origins or list in origins:
        if value.startswith(("[", "{")):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise RequestError(name, f"{name} is not valid JSON ({exc}).") from None
        if list in origins:
            return [part.strip() for part in value.split(";") if part.strip()]
        raise RequestError(name, f"{name} must be a JSON object; got {text!r}.")
    return text
