"""A local stand-in for the Hugging Face Hub's HTTP API, serving folders as model repositories.

It answers the calls ``huggingface_hub`` makes for ``snapshot_download`` and ``model_info``:

- ``GET /api/models/{repo}[/revision/{rev}]``: the commit and every file with its size, git blob id
  and, for weights (stored with Git LFS on the Hub), the LFS sha256;
- ``GET /api/models/{repo}/tree/{rev}``: the same listing in the tree format;
- ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: the file, with ``X-Repo-Commit``, ``ETag`` and
  ``Content-Length``, and ``Range`` requests for resuming.

Faults can be injected per file: ``cut`` sends only half a file before dropping the connection
(a network cut), ``corrupt`` serves other bytes than the recorded checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

LFS_SUFFIXES = (".bin", ".safetensors")


class LocalHub:
    """Serves ``{repo_id: folder}`` over HTTP on localhost; use as a context manager."""

    def __init__(self, repos: dict[str, Path]):
        self.files = {
            repo: {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}
            for repo, root in repos.items()
        }
        self.commits = {repo: hashlib.sha1(repo.encode()).hexdigest() for repo in repos}
        self.cut: dict[tuple[str, str], int] = {}
        """(repo, file) -> how many more GETs of it are cut after half the bytes."""
        self.corrupt: set[tuple[str, str]] = set()
        self.gets: list[tuple[str, str, str | None]] = []
        """(repo, file, Range header) of every file GET."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "LocalHub":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, repo: str, name: str) -> dict:
        """The Hub's metadata of one file."""
        data = self.files[repo][name]
        entry = {"size": len(data), "blob_id": hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()}
        if name.endswith(LFS_SUFFIXES):
            entry["sha256"] = hashlib.sha256(data).hexdigest()
        return entry

    def served(self, repo: str, name: str) -> bytes:
        """The bytes a GET returns (the real file unless it is marked corrupt)."""
        data = self.files[repo][name]
        return bytes(b ^ 0xFF for b in data) if (repo, name) in self.corrupt else data


def _handler(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    info = re.compile(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?")
    tree = re.compile(r"/api/models/([^/]+/[^/]+)/tree/[^/]+(?:/.*)?")
    resolve = re.compile(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _json(self, value) -> None:
            self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json"})

        def _missing(self, head: bool = False) -> None:
            self._send(404, b"{}", {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, head)

        def do_HEAD(self) -> None:
            self._file(head=True)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            for pattern, answer in ((tree, self._tree), (info, self._info)):
                match = pattern.fullmatch(path)
                if match:
                    return answer(match.group(1)) if match.group(1) in hub.files else self._missing()
            self._file(head=False)

        def _info(self, repo: str) -> None:
            siblings = []
            for name in hub.files[repo]:
                record = hub.record(repo, name)
                lfs = {"size": record["size"], "sha256": record["sha256"], "pointerSize": 134} if "sha256" in record else None
                siblings.append({"rfilename": name, "size": record["size"], "blobId": record["blob_id"], "lfs": lfs})
            self._json({"id": repo, "modelId": repo, "sha": hub.commits[repo], "private": False, "siblings": siblings})

        def _tree(self, repo: str) -> None:
            entries, folders = [], set()
            for name in hub.files[repo]:
                record = hub.record(repo, name)
                entry = {"type": "file", "path": name, "size": record["size"], "oid": record["blob_id"]}
                if "sha256" in record:
                    entry["lfs"] = {"oid": record["sha256"], "size": record["size"], "pointerSize": 134}
                entries.append(entry)
                folders.update("/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1))
            entries += [{"type": "directory", "path": f, "size": 0, "oid": "0" * 40} for f in sorted(folders)]
            self._json(entries)

        def _file(self, head: bool) -> None:
            match = resolve.fullmatch(self.path.split("?", 1)[0])
            if not match or match.group(1) not in hub.files:
                return self._missing(head)
            repo, name = match.groups()
            if name not in hub.files[repo]:
                return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": hub.commits[repo]}, head)
            record = hub.record(repo, name)
            headers = {"X-Repo-Commit": hub.commits[repo], "ETag": f'"{record.get("sha256", record["blob_id"])}"', "Accept-Ranges": "bytes"}
            data = hub.served(repo, name)
            if head:
                return self._send(200, data, headers, head=True)
            requested = self.headers.get("Range")
            hub.gets.append((repo, name, requested))
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1)) if requested else 0
            if start:
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            if hub.cut.get((repo, name), 0) > 0:
                hub.cut[repo, name] -= 1
                self.send_response(206 if start else 200)
                for key, value in {"Content-Length": str(len(data) - start), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data[start : start + (len(data) - start) // 2])
                self.wfile.flush()
                self.close_connection = True  # the network cut: the rest never arrives
                return
            self._send(206 if start else 200, data[start:], headers)

    return Handler


@contextlib.contextmanager
def serving(repos: dict[str, Path], monkeypatch) -> Iterator[LocalHub]:
    """Run a :class:`LocalHub` and point huggingface_hub in this process at it (online, fast retries)."""
    from huggingface_hub import constants, file_download

    with LocalHub(repos) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)  # as small against tiny files as 10 MB is against real ones
        monkeypatch.setattr(file_download, "time", type("NoWait", (), {"sleep": staticmethod(lambda seconds: None)}))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield hub
