"""Files a visitor hands the app: only files in Gradio's upload cache, never a path on the server.

What it is: the one gate every handler that takes a file goes through (a CSV of points, a
saved run, a drawing), and the one place that turns text a visitor controls into a message
(`refusal`). What it is not: the parsing of those files (`gan_core.data`, `gan_core.checkpoints`).

Why: a file input arrives as a path string. The page's upload box puts it in Gradio's upload
cache, but an API call can name any path, and Gradio's own check does not run everywhere the
app can be served (it is skipped, for one, before `launch()`; and it does not resolve links).
So a path is accepted only if, *lexically* (before anything on disk is touched), it names a file
two levels inside the upload cache — `<cache>/<hash>/<name>`, the only shape Gradio writes — and
then no part of it under the cache is a symbolic link, and it is a regular file within the size
limit. The `<hash>` folder is a SHA-256 of the file's bytes keyed with a secret of the server's
(`gradio.processing_utils.hash_file`), so a visitor can name a cached file only if they hold its
exact bytes: one they uploaded, or one the app handed to them (their saved run, their drawing).

Messages shown to a visitor render as HTML in Gradio's toasts: `refusal` escapes whatever the
visitor sent (and everything an error derived from it may echo) and bounds its length.
"""

from __future__ import annotations

import html
import os
import stat
from pathlib import Path

import gradio as gr

MAX_UPLOAD_BYTES = 50_000_000  # what Gradio accepts at its upload route (a run file's limit)
MAX_PATH_CHARS = 4096
MAX_MESSAGE_CHARS = 600
UPLOAD_HINT = "use the page's upload box (or gradio_client's handle_file) to send a file from your computer"


def refusal(message: str) -> gr.Error:
    """A `gr.Error` whose text is shown as plain text: HTML-escaped and at most MAX_MESSAGE_CHARS."""
    text = str(message)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return gr.Error(html.escape(text, quote=False))


def upload_root() -> Path:
    """Gradio's upload cache (GRADIO_TEMP_DIR, else <temp>/gradio), as Gradio computes it."""
    from gradio.utils import get_upload_folder  # Gradio's own rule for where uploads go

    return Path(get_upload_folder())


def _roots() -> list[Path]:
    """The upload cache as configured and, if that goes through a link (macOS's /var), as resolved."""
    root = upload_root()
    real = Path(os.path.realpath(root))
    return [root] if real == root else [root, real]


def _inside(path: str, root: Path) -> tuple[str, ...] | None:
    """`path`'s parts below `root`, lexically (no file system access), or None if it is not below."""
    normal = Path(os.path.normpath(os.path.abspath(path)))
    try:
        return normal.relative_to(root).parts
    except ValueError:
        return None


def visitor_file(value, *, what: str, max_bytes: int) -> Path:
    """The cached upload `value` names, checked as the module docstring says; a `refusal` otherwise.

    `what` names the file for the message ("The CSV file", "The run file", "The drawing").
    """
    if isinstance(value, dict):  # a FileData that reached a handler unprocessed
        value = value.get("path")
    if not isinstance(value, (str, os.PathLike)):
        raise refusal(f"{what} is missing or not a file: {UPLOAD_HINT}.")
    value = os.fspath(value)
    if not value or len(value) > MAX_PATH_CHARS or "\x00" in value:
        raise refusal(f"{what} is not a file this server can read: {UPLOAD_HINT}.")
    parts, root = None, None
    for candidate in _roots():
        parts = _inside(value, candidate)
        if parts is not None:
            root = candidate
            break
    if parts is None or len(parts) != 2 or any(part in ("", ".", "..") for part in parts):
        raise refusal(f"{what} was not uploaded to this page: the server reads only files uploaded to it, "
                      f"never other paths; {UPLOAD_HINT}.")
    path = root
    try:
        for part in parts:
            path = path / part
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise refusal(f"{what} is a link, not an uploaded file; {UPLOAD_HINT}.")
    except FileNotFoundError:
        raise refusal(f"{what} is no longer on the server (uploads are kept for a while only): upload it again.") \
            from None
    except OSError:
        raise refusal(f"{what} cannot be read: upload it again.") from None
    if not stat.S_ISREG(info.st_mode):
        raise refusal(f"{what} is not a regular file; {UPLOAD_HINT}.")
    if info.st_size > max_bytes:
        raise refusal(f"{what} is {info.st_size:,} bytes; the limit is {max_bytes / 1e6:g} MB "
                      f"({max_bytes:,} bytes).")
    return path


def read_visitor_file(value, *, what: str, max_bytes: int) -> bytes:
    """The bytes of the upload `value` names (`visitor_file`'s checks; never more than `max_bytes`)."""
    path = visitor_file(value, what=what, max_bytes=max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)  # never more than the limit, whatever the file became
    except OSError:
        raise refusal(f"{what} cannot be read: upload it again.") from None
    if len(data) > max_bytes:
        raise refusal(f"{what} is over the limit of {max_bytes / 1e6:g} MB ({max_bytes:,} bytes).")
    return data
