"""Safety helpers: paths stay inside their folder, logins parse, sizes parse, exposure warns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wan_studio.errors import StudioError
from wan_studio.safety import (
    PathNotAllowed,
    check_inside,
    exposure_warning,
    parse_auth,
    parse_size,
)


@pytest.fixture
def root(tmp_path):
    outputs = tmp_path / "outputs"
    (outputs / "day").mkdir(parents=True)
    (outputs / "day" / "clip.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("secret")
    return outputs


# --- check_inside ------------------------------------------------------------------------------


def test_relative_and_absolute_inside(root):
    assert check_inside(root, "day/clip.json") == (root / "day" / "clip.json").resolve()
    assert check_inside(root, str(root / "day" / "clip.json")) == (root / "day" / "clip.json").resolve()
    assert check_inside(str(root), "day/../day/clip.json").name == "clip.json"
    assert check_inside(root, "not-yet/new.mp4") == (root / "not-yet" / "new.mp4").resolve()
    assert check_inside(root, ".") == root.resolve()
    assert check_inside(root, "day/clip.json").is_absolute()


@pytest.mark.parametrize("attempt", [
    "../secret.txt",
    "../../etc/passwd",
    "day/../../secret.txt",
    "/etc/passwd",
    "..",
])
def test_traversal_refused(root, attempt):
    with pytest.raises(PathNotAllowed) as info:
        check_inside(root, attempt, what="recipe")
    message = str(info.value)
    assert message.startswith(f"Refused: the recipe path '{attempt}' is outside the allowed folder")
    assert str(root.resolve()) in message


def test_absolute_path_in_a_sibling_with_the_same_prefix(root, tmp_path):
    sibling = tmp_path / "outputs-evil"
    sibling.mkdir()
    with pytest.raises(PathNotAllowed):
        check_inside(root, str(sibling / "x.json"))


def test_symlink_pointing_out_refused(root, tmp_path):
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "linkdir").symlink_to(tmp_path)
    with pytest.raises(PathNotAllowed):
        check_inside(root, "link.txt")
    with pytest.raises(PathNotAllowed):
        check_inside(root, "linkdir/secret.txt")


def test_symlink_inside_allowed(root):
    (root / "latest.json").symlink_to(root / "day" / "clip.json")
    assert check_inside(root, "latest.json") == (root / "day" / "clip.json").resolve()


def test_root_given_through_a_symlink(root, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert check_inside(alias, "day/clip.json") == (root / "day" / "clip.json").resolve()
    assert check_inside(alias, str(root / "day" / "clip.json")).name == "clip.json"


def test_symlink_loop_refused(root):
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    try:
        result = check_inside(root, "a/x")
    except PathNotAllowed:
        return
    assert result.is_relative_to(root.resolve())  # some Pythons resolve loops leniently


@pytest.mark.parametrize("bad", ["day/clip.json\x00.mp4", "\x00", "../\x00etc"])
def test_nul_byte_refused(root, bad):
    with pytest.raises(PathNotAllowed, match="NUL byte"):
        check_inside(root, bad)


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_empty_refused(root, empty):
    with pytest.raises(PathNotAllowed, match="empty"):
        check_inside(root, empty, what="video")


@pytest.mark.parametrize("encoded", [
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "..\\..\\etc\\passwd",
    "\uff0e\uff0e/secret.txt",  # fullwidth dots
])
def test_encoded_names_are_literal_and_stay_inside(root, encoded):
    result = check_inside(root, encoded)
    assert result.is_relative_to(root.resolve())
    assert result == (root / encoded).resolve()


def test_path_not_allowed_is_a_studio_error():
    assert issubclass(PathNotAllowed, StudioError)


# --- parse_auth --------------------------------------------------------------------------------


def test_auth_none_and_empty():
    assert parse_auth(None) == []
    assert parse_auth("") == []


def test_auth_string():
    assert parse_auth("admin:secret") == [("admin", "secret")]
    assert parse_auth("admin:pa:ss:word") == [("admin", "pa:ss:word")]
    assert parse_auth("  admin:secret ") == [("admin", "secret")]


@pytest.mark.parametrize("bad", ["admin", ":secret", "admin:", "nosuchfile.txt"])
def test_auth_string_bad(bad):
    with pytest.raises(StudioError):
        parse_auth(bad)


def test_auth_bad_string_does_not_echo_the_password():
    for value in (":hunter2", "hunter2"):
        with pytest.raises(StudioError) as info:
            parse_auth(value)
        assert "hunter2" not in str(info.value)


def test_auth_file(tmp_path):
    path = tmp_path / "auth.txt"
    path.write_text("# people allowed in\n\nalice:wonder:land\n  bob:builder  \n# end\n")
    assert parse_auth(str(path)) == [("alice", "wonder:land"), ("bob", "builder")]


def test_auth_file_with_bom(tmp_path):
    path = tmp_path / "auth.txt"
    path.write_bytes("\ufeffalice:x\n".encode())
    assert parse_auth(str(path)) == [("alice", "x")]


def test_auth_file_bad_line_names_the_line(tmp_path):
    path = tmp_path / "auth.txt"
    path.write_text("alice:x\n# comment\nbob-without-password\ncarol:y\n")
    with pytest.raises(StudioError, match="line 3") as info:
        parse_auth(str(path))
    assert str(path) in str(info.value)


def test_auth_file_bad_line_does_not_echo_it(tmp_path):
    path = tmp_path / "auth.txt"
    path.write_text(":topsecret\n")
    with pytest.raises(StudioError, match="line 1") as info:
        parse_auth(str(path))
    assert "topsecret" not in str(info.value)


def test_auth_file_duplicate_user(tmp_path):
    path = tmp_path / "auth.txt"
    path.write_text("alice:x\nalice:y\n")
    with pytest.raises(StudioError, match="line 2"):
        parse_auth(str(path))


def test_auth_file_without_entries(tmp_path):
    path = tmp_path / "auth.txt"
    path.write_text("# nobody yet\n\n")
    with pytest.raises(StudioError, match="no user:password"):
        parse_auth(str(path))


def test_auth_file_unreadable(tmp_path, monkeypatch):
    # the read itself is refused, as for a file of another user (root, as in CI, reads any mode)
    path = tmp_path / "auth.txt"
    path.write_text("alice:x\n")
    plain_read_text = Path.read_text

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return plain_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(StudioError) as info:
        parse_auth(str(path))
    assert str(info.value).startswith(f"Cannot read the auth file {path}: ")
    assert "Permission denied" in str(info.value)


def test_auth_file_that_is_not_text(tmp_path):
    path = tmp_path / "auth.txt"
    path.write_bytes(b"alice:\xff\xfe secret\n")  # not UTF-8
    with pytest.raises(StudioError, match=f"^Cannot read the auth file {re.escape(str(path))}: 'utf-8' codec") as info:
        parse_auth(str(path))
    assert "secret" not in str(info.value)


# --- parse_size --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1024", 1024),
    (1024, 1024),
    ("0", 0),
    ("200MB", 200_000_000),
    ("200mb", 200_000_000),
    ("1.5GB", 1_500_000_000),
    ("500 KiB", 500 * 1024),
    ("2GiB", 2 * 1024**3),
    ("1.5 MiB", 1_572_864),
    ("10k", 10_000),
    ("3 B", 3),
    (" 1TB ", 10**12),
    (".5GB", 500_000_000),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", [
    "", "MB", "abc", "-5MB", "5 XB", "1,000", "1.2.3GB", "5 MB extra", "1.5", "nan", "inf",
    None, 1.5, True, -1,
])
def test_parse_size_nonsense(bad):
    with pytest.raises(StudioError):
        parse_size(bad)


# --- exposure_warning --------------------------------------------------------------------------


def test_exposure_warning():
    assert exposure_warning(listen=False, share=False, auth=[]) is None
    assert exposure_warning(listen=True, share=False, auth=[("a", "b")]) is None
    assert exposure_warning(listen=False, share=True, auth=[("a", "b")]) is None
    listen = exposure_warning(listen=True, share=False, auth=[])
    share = exposure_warning(listen=False, share=True, auth=[])
    both = exposure_warning(listen=True, share=True, auth=[])
    assert "network" in listen and "share link" not in listen
    assert "share link" in share
    assert "network" in both and "share link" in both
    assert all("--auth" in w for w in (listen, share, both))
