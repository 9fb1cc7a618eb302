"""Uploads: a file sent by the data page's form, streamed to disk as it arrives.

Tornado holds a request's body in memory (100 MB at most by default); a set
uploaded from the data page may be larger, so the upload handler streams
the body through :class:`MultipartFile`, which writes the ``file`` field to
a temporary file beside where it goes. Names are made safe by
:func:`upload_name`.
"""

from __future__ import annotations

import email.message
import os
import re
import tempfile
from typing import Any

import tornado.httputil
import tornado.web

__all__ = ["MultipartFile", "multipart_boundary", "upload_name"]


def upload_name(filename: str, side: str) -> str:
    """A safe name for an uploaded file: letters, digits, ``._-``, never a dot file nor ``..``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(filename.replace("\\", "/"))).lstrip(".")
    return name or f"{side}.csv"


def _header(value: str) -> tuple[str, dict[str, str]]:
    """A MIME header's value and its parameters (``multipart/form-data``, ``{"boundary": …}``)."""
    message = email.message.Message()
    message["x"] = value
    params = message.get_params(header="x") or [("", "")]
    return params[0][0].lower(), {k.lower(): str(v) for k, v in params[1:]}


def multipart_boundary(content_type: str) -> bytes:
    """The boundary of a multipart/form-data body, from its Content-Type (else a 400)."""
    kind, params = _header(content_type)
    if kind != "multipart/form-data" or not params.get("boundary"):
        raise tornado.web.HTTPError(400, "an upload is a multipart/form-data form")
    return params["boundary"].encode("latin-1")


class MultipartFile:
    """The ``file`` field of a multipart/form-data body fed in chunks, written to a temporary file beside
    where it goes (the other fields are small and ignored)."""

    def __init__(self, boundary: bytes, directory: str):
        self.delimiter = b"\r\n--" + boundary
        self.directory = directory
        self.buffer = b"\r\n"  # (the first delimiter has no line break before it)
        self.state = "data"  # "data" (the preamble, or a part's body), "headers" (of a part), "end"
        self.filename: str | None = None
        self.out: Any = None
        self.tmp: str | None = None
        self.complete = False  # the file's part ended with a delimiter

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        while self.state != "end":
            if self.state == "data":
                at = self.buffer.find(self.delimiter)
                if at < 0:  # (keep what could be the start of a delimiter)
                    keep = len(self.delimiter)
                    self._write(self.buffer[:-keep])
                    self.buffer = self.buffer[-keep:]
                    return
                self._write(self.buffer[:at])
                if self.out is not None:
                    self.out.close()
                    self.out, self.complete = None, True
                self.buffer = self.buffer[at + len(self.delimiter):]
                self.state = "headers"
            else:
                if self.buffer.startswith(b"--"):
                    self.state = "end"
                    return
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                headers = tornado.httputil.HTTPHeaders.parse(self.buffer[:end].decode("utf-8", "replace"))
                self.buffer = self.buffer[end + 4:]
                _, params = _header(headers.get("Content-Disposition", ""))
                if params.get("name") == "file" and params.get("filename") and self.filename is None:
                    self.filename = params["filename"]
                    fd, self.tmp = tempfile.mkstemp(prefix=".upload-", dir=self.directory)
                    self.out = os.fdopen(fd, "wb")
                self.state = "data"

    def _write(self, data: bytes) -> None:
        if self.out is not None and data:
            self.out.write(data)

    def finish(self) -> tuple[str, str] | None:
        """(file name, temporary path) of the uploaded file, or None when the form had no file."""
        if self.filename is None or self.tmp is None:
            return None
        if not self.complete:
            raise tornado.web.HTTPError(400, "the upload was cut short")
        tmp, self.tmp = self.tmp, None
        return self.filename, tmp

    def discard(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        if self.tmp is not None and os.path.exists(self.tmp):
            os.remove(self.tmp)
            self.tmp = None
