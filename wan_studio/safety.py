"""Guards for a studio that may be reachable from other machines: paths, logins, upload limits.

- `check_inside` keeps every user-given path (a recipe to load, a file to serve) inside one folder,
  after following symlinks, so `../../etc/passwd` or a link pointing out is refused, not read.
- `parse_auth` reads `--auth`: "user:password" or a file of such lines.
- `parse_size` reads an upload limit such as "200MB".
- `exposure_warning` says when the studio is open to the network without a login.

Messages never repeat a password.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import StudioError


class PathNotAllowed(StudioError):
    """A user-given path points outside the folder it must stay in, or is not a path at all."""


def check_inside(root, user_path, what: str = "file") -> Path:
    """The absolute, symlink-resolved path of `user_path` if it lies inside `root`, else raise.

    A relative `user_path` is taken relative to `root`. Nothing is decoded: "%2e%2e" is a
    folder name, not "..". The path need not exist; links that do exist are followed.
    """
    if user_path is None or str(user_path).strip() == "":
        raise PathNotAllowed(f"Refused: the {what} path is empty.")
    text = str(user_path)
    if "\x00" in text:
        raise PathNotAllowed(f"Refused: the {what} path {text!r} contains a NUL byte.")
    root_path = Path(root).resolve()
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = root_path / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, names too long
        raise PathNotAllowed(f"Refused: the {what} path '{text}' cannot be resolved ({exc}).") from exc
    if not resolved.is_relative_to(root_path):
        raise PathNotAllowed(
            f"Refused: the {what} path '{text}' is outside the allowed folder {root_path}."
        )
    return resolved


def parse_auth(value: str | None) -> list[tuple[str, str]]:
    """Logins from "user:password" or from a file with one user:password per line.

    The password is everything after the first ':' and may itself contain ':'. In a file, blank
    lines and lines starting with '#' are skipped, and a user may appear only once.
    """
    if value is None or not str(value).strip():
        return []
    value = str(value)
    path = Path(value).expanduser()
    if path.is_file():
        return _auth_file(path)
    if ":" not in value:
        # not echoed: a mistyped value may well be a password
        raise StudioError("Auth must be user:password or the path of an existing file of such lines.")
    pair = _auth_pair(value.strip())
    if pair is None:
        raise StudioError("Auth must be user:password with a non-empty user and password.")
    return [pair]


def _auth_file(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StudioError(f"Cannot read the auth file {path}: {exc}") from exc
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pair = _auth_pair(line)
        if pair is None:
            raise StudioError(
                f"Auth file {path}, line {number}: expected user:password "
                "with a non-empty user and password."
            )
        if pair[0] in seen:
            raise StudioError(f"Auth file {path}, line {number}: user '{pair[0]}' appears twice.")
        seen.add(pair[0])
        pairs.append(pair)
    if not pairs:
        raise StudioError(f"Auth file {path} has no user:password lines.")
    return pairs


def _auth_pair(text: str) -> tuple[str, str] | None:
    user, sep, password = text.partition(":")
    user = user.strip()
    if not sep or not user or not password:
        return None
    return user, password


# Decimal units as written on disks (MB = 1000**2), binary ones with an "i" (MiB = 1024**2);
# a bare letter (K, M, G, T) counts as decimal.
_SIZE_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgt", start=1):
    _SIZE_UNITS[_letter] = _SIZE_UNITS[_letter + "b"] = 1000**_power
    _SIZE_UNITS[_letter + "ib"] = _SIZE_UNITS[_letter + "i"] = 1024**_power

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text) -> int:
    """Bytes from "1024", "500 KiB", "200MB", "1.5GB"; StudioError for anything else."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise StudioError(f"A size cannot be negative, got {text}.")
        return text
    match = _SIZE_RE.match(str(text)) if isinstance(text, str) else None
    unit = match and _SIZE_UNITS.get(match.group(2).lower())
    if not match or unit is None:
        raise StudioError(
            f"Cannot read the size {text!r}: use a number with an optional unit, "
            "such as 1024, 500KiB, 200MB or 1.5GB."
        )
    number = float(match.group(1))
    if unit == 1 and not number.is_integer():
        raise StudioError(f"A size in bytes must be a whole number, got {text!r}.")
    return round(number * unit)


def exposure_warning(listen: bool, share: bool, auth: list) -> str | None:
    """A warning when other machines can reach the studio and no login protects it."""
    if auth or not (listen or share):
        return None
    how = " and ".join(
        reason for reason, on in (
            ("it listens on the network", listen),
            ("a public share link is open", share),
        ) if on
    )
    return (
        f"Warning: {how}, with no login. Anyone who reaches it can run jobs on this machine, "
        "read your outputs and fill your disk. Add a login with --auth user:password "
        "(or a file of user:password lines)."
    )
