"""``bigalign plan``, ``run``, ``index`` and ``link`` started from the page: the
command line itself, in a process of its own, followed line by line.

The page runs exactly what a user would type, on the saved job file, so the
application can do nothing the command line cannot; cancelling is the
command line's Ctrl-C (SIGINT: nothing incomplete is left under a final
name), then a kill if it does not stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["Command"]

# Seconds a cancelled command has to stop after SIGINT before it is killed (its clean-up — Dask's
# performance report, closing the client — can wait on a busy scheduler); killed, it still leaves
# nothing incomplete under a final name (every output is written under a temporary name first).
CANCEL_GRACE = 10.0
STAGE_PREFIX = "bigalign: stage: "


class Command:
    """One ``bigalign`` command running (or ran) in a process of its own."""

    def __init__(self, kind: str, job_path: str, scheduler: str | None, arguments: Sequence[str] = ()):
        self.kind, self.arguments = kind, list(arguments)
        args = [sys.executable, "-m", "bigalign", kind, job_path, *arguments, "--quiet"]
        if scheduler:
            args += ["--scheduler", scheduler]
        self.lines: list[str] = []
        self.stages: list[str] = []
        self.cancelled = False
        self.started = time.time()
        self.ended: float | None = None
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                        cwd=os.path.dirname(job_path))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            if line.startswith(STAGE_PREFIX):
                self.stages.append(line[len(STAGE_PREFIX):])
            else:
                self.lines.append(line)
        self.process.wait()
        self.ended = time.time()

    @property
    def state(self) -> str:
        code = self.process.poll()
        if code is None or self.ended is None:
            return "cancelling" if self.cancelled else "running"
        if self.cancelled:
            return "cancelled"
        return "succeeded" if code == 0 else "failed"

    def cancel(self) -> None:
        if self.process.poll() is not None:
            return
        self.cancelled = True
        self.process.send_signal(signal.SIGINT)
        threading.Thread(target=self._kill_later, daemon=True).start()

    def _kill_later(self) -> None:
        try:
            self.process.wait(CANCEL_GRACE)
        except subprocess.TimeoutExpired:
            # (said before the kill: the page reads the lines once the process has ended)
            self.lines.append(f"bigalign serve: the {self.kind} did not stop within {CANCEL_GRACE:.0f} s of the "
                              "interrupt: killed (nothing incomplete is left under a final name)")
            self.process.kill()

    def wait(self, timeout: float | None = None) -> str:
        self.process.wait(timeout)
        self._reader.join(timeout)
        return self.state

    def as_dict(self) -> dict[str, Any]:
        # (the page shows what a finished command wrote — a run's summary, a suggestion —: read again then)
        return {"kind": self.kind, "state": self.state, "stages": self.stages, "lines": self.lines,
                "seconds": round((self.ended or time.time()) - self.started, 1),
                "reload": self.kind != "plan" or "--suggest" in self.arguments}
