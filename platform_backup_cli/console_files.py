"""The console's static files (index.html, app.js, app.css), served under /console/ by the local
stack's gateway and by `platform-backup console`; they ship inside this package."""

from __future__ import annotations

from importlib import resources

PREFIX = "/console"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_HEADERS = [
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    # Everything the page loads comes from here; its calls go to the same origin's /v1.
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
]

Answer = tuple[int, list[tuple[str, str]], bytes]


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def serve(path: str) -> Answer:
    """The answer to a GET of a console path (the query string already removed)."""
    if path == PREFIX:
        return 301, [("Location", PREFIX + "/")], b""
    name = path[len(PREFIX) + 1 :] or "index.html"
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    folder = resources.files("platform_backup_cli") / "console"
    # Only plain file names of the folder: no '..', no subfolders.
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in _TYPES:
        return 404, [("Content-Type", "text/plain")], b"not found"
    asset = folder / name
    if not asset.is_file():
        return 404, [("Content-Type", "text/plain")], b"not found"
    return 200, [("Content-Type", _TYPES[suffix]), *_HEADERS], asset.read_bytes()
