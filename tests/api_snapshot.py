"""The studio's named API endpoints and their parameters, kept as a snapshot clients can rely on.

tests/data/api_snapshot.json records every named endpoint: its parameters in order (name, required
or optional, the type a client sends) and what it returns. tests/test_api_contract.py compares the
app with it: an endpoint or parameter removed, renamed or moved, a type or a return changed, or a
parameter newly required breaks the clients of the last release and fails; an added endpoint or
optional parameter is compatible and only needs recording:

    python -m tests.api_snapshot --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parent / "data" / "api_snapshot.json"
REFRESH = "python -m tests.api_snapshot --write"


def current_api(settings=None) -> dict:
    """endpoint -> {parameters: [{name, required, type}], returns: [type]}, from the studio's own API info."""
    from ui.shell import build_studio
    from wan_studio.settings import load_settings

    info = build_studio(settings or load_settings()).get_api_info()["named_endpoints"]
    return {name: {"parameters": [{"name": p["parameter_name"], "required": not p["parameter_has_default"],
                                   "type": p["python_type"]["type"]} for p in endpoint["parameters"]],
                   "returns": [r["python_type"]["type"] for r in endpoint["returns"]]}
            for name, endpoint in sorted(info.items())}


def breaking_changes(recorded: dict, now: dict) -> list[str]:
    """What would break a client written against `recorded`, one sentence each."""
    found = []
    for endpoint, old in recorded.items():
        new = now.get(endpoint)
        if new is None:
            found.append(f"{endpoint} was removed")
            continue
        names = [p["name"] for p in new["parameters"]]
        for place, param in enumerate(old["parameters"]):
            name = param["name"]
            if name not in names:
                found.append(f"{endpoint}: parameter '{name}' was removed or renamed")
                continue
            moved_to = names.index(name)
            got = new["parameters"][moved_to]
            if moved_to != place:
                found.append(f"{endpoint}: parameter '{name}' moved from place {place + 1} to {moved_to + 1} "
                             f"(calls by position would break)")
            if got["required"] and not param["required"]:
                found.append(f"{endpoint}: parameter '{name}' became required")
            if got["type"] != param["type"]:
                found.append(f"{endpoint}: parameter '{name}' takes {got['type']} instead of {param['type']}")
        known = {p["name"] for p in old["parameters"]}
        for param in new["parameters"]:
            if param["name"] not in known and param["required"]:
                found.append(f"{endpoint}: new parameter '{param['name']}' is required; give it a default "
                             f"(a file input: added_later=True in its request_field)")
        if new["returns"] != old["returns"]:
            found.append(f"{endpoint}: returns {new['returns']} instead of {old['returns']}")
    return found


def additions(recorded: dict, now: dict) -> list[str]:
    """Compatible changes the snapshot does not record yet."""
    found = [f"{endpoint} (new endpoint)" for endpoint in now if endpoint not in recorded]
    for endpoint, old in recorded.items():
        known = {p["name"] for p in old["parameters"]}
        found += [f"{endpoint}: optional parameter '{p['name']}'" for p in now.get(endpoint, {}).get("parameters", [])
                  if p["name"] not in known]
    return found


def write(api: dict, path: Path = SNAPSHOT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["{"]
    for n, (endpoint, info) in enumerate(api.items()):
        params = ",\n".join(f"   {json.dumps(param)}" for param in info["parameters"])
        lines.append(f' {json.dumps(endpoint)}: {{"parameters": [\n{params}\n  ],')
        lines.append(f'  "returns": {json.dumps(info["returns"])}}}' + ("," if n < len(api) - 1 else ""))
    path.write_text("\n".join([*lines, "}"]) + "\n", encoding="utf-8")  # one parameter a line: diffs read well


def main(argv: list[str]) -> int:
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8")) if SNAPSHOT.exists() else {}
    now = current_api()
    broken, added = breaking_changes(recorded, now), additions(recorded, now)
    for line in broken:
        print(f"breaks clients: {line}")
    for line in added:
        print(f"added: {line}")
    if "--write" in argv:
        write(now)
        print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
