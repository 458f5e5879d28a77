"""A small stand-in for the Hugging Face Hub on 127.0.0.1, with the few routes a snapshot download
uses (the repository's revision and file tree, and each file by its resolve URL, with ranges), so
downloads run for real here. `hold_after` bytes into a whole-file request, the server holds the
rest until `release()`: a download can be caught mid-file without any timing."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class MiniHub:
    def __init__(self, files: dict[str, bytes], hold_after: int | None = None):
        self.files, self.hold_after = files, hold_after
        self.fetched: list[str] = []  # each file's whole-or-ranged GET, in order
        self.holding = threading.Event()  # a request is being held
        self._release = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, value):
                body = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, head: bool):
                name = "/".join(self.path.split("?")[0].split("/")[5:])  # /owner/repo/resolve/REV/<path>
                data = hub.files.get(name)
                if data is None:  # as the Hub answers for a file the repo does not have
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                asked = self.headers.get("Range")
                start = int(asked.split("=")[1].split("-")[0]) if asked else 0
                if not head:
                    hub.fetched.append(name)
                self.send_response(206 if asked else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if head:
                    return
                body = data[start:]
                cut = len(body) if asked or hub.hold_after is None else min(hub.hold_after, len(body))
                self.wfile.write(body[:cut])
                self.wfile.flush()
                if cut < len(body):
                    hub.holding.set()
                    hub._release.wait(60)
                    try:
                        self.wfile.write(body[cut:])
                    except OSError:  # the client is gone (stopped)
                        pass

            def do_HEAD(self):
                self._file(head=True)

            def do_GET(self):
                path = self.path.split("?")[0]
                if "/tree/" in path:
                    return self._json([{"type": "file", "path": name, "size": len(data),
                                        "oid": hashlib.sha1(data).hexdigest()} for name, data in hub.files.items()])
                if path.startswith("/api/models/"):
                    return self._json({"id": "/".join(path.split("/")[3:5]), "sha": COMMIT,
                                       "siblings": [{"rfilename": name} for name in hub.files]})
                return self._file(head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def point_hub_at(monkeypatch, url: str, cache) -> None:
    """huggingface_hub, in this process and its children, talks to the Hub at `url` (a stand-in, or an
    address where nothing answers) through the cache folder `cache`, online."""
    import huggingface_hub.constants as constants

    for name, value in (("HF_ENDPOINT", url), ("HF_HUB_CACHE", str(cache))):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
