"""A real CubicWeb instance on loopback, holding the seed's geonames cities (``jobs/data/cities_geonames.csv``):
what the RQL tests read, and what ``jobs/cities_rql.toml`` reads when served by hand::

    python tests/cubicweb_instance.py --port 8080     # then, in another shell, with the two variables it prints:
    CW_USER=admin CW_PASSWORD=… bigalign run jobs/cities_rql.toml

CubicWeb lives in a virtual environment of its own (``.venv-cubicweb`` at the project's root, made on first
use from the package index: CubicWeb 5, cubicweb-web and this folder's cube), apart from bigalign's: it is
a server beside bigalign, as Oxigraph and PostgreSQL are, and its pins are its own. Its database is SQLite.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-cubicweb"
CUBE = ROOT / "tests" / "cubicweb"
CITIES = ROOT / "jobs" / "data" / "cities_geonames.csv"
# What the instance's creation installs; the tests say why they are skipped when it cannot.
PACKAGES = ["cubicweb>=5.0,<6", "cubicweb-web>=1.6,<2"]


def cubicweb_ctl() -> str:
    """The ``cubicweb-ctl`` command of :data:`VENV`, made first if it is not there (a ``RuntimeError`` saying why
    when it cannot be)."""
    ctl = VENV / "bin" / "cubicweb-ctl"
    if ctl.exists():
        return str(ctl)
    steps = [[sys.executable, "-m", "venv", str(VENV)],
             [str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES, "-e", str(CUBE)]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(step[:3])}… failed: {(done.stderr or done.stdout)[-1500:]}")
    return str(ctl)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    """An instance of the geonames cube under ``directory``: created, loaded, served on ``port``."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory, self.port = Path(directory), port or free_port()
        self.env = {**os.environ, "CW_INSTANCES_DIR": str(self.directory / "instances"),
                    "CW_INSTANCES_DATA_DIR": str(self.directory / "data"), "CW_RUNTIME_DIR": str(self.directory),
                    "CW_PORT": str(self.port), "CW_HOST": "127.0.0.1", "PYTHONWARNINGS": "ignore"}
        self.server: subprocess.Popen | None = None
        self.password = ""

    def _ctl(self, *args: str) -> str:
        done = subprocess.run([cubicweb_ctl(), *args], env=self.env, capture_output=True, text=True, timeout=600,
                              cwd=self.directory)
        if done.returncode:
            raise RuntimeError(f"cubicweb-ctl {' '.join(args)} failed: {(done.stderr or done.stdout)[-1500:]}")
        return done.stdout

    def create(self) -> None:
        """The instance (SQLite), its database and the cities."""
        for name in ("instances", "data"):
            (self.directory / name).mkdir(parents=True, exist_ok=True)
        self._ctl("create", "geonames", "geo", "-a", "-S")
        sources = self.directory / "instances" / "geo" / "sources"
        text = sources.read_text()
        text = re.sub(r"(?m)^db-driver=.*$", "db-driver=sqlite", text)
        text = re.sub(r"(?m)^db-name=.*$", f"db-name={self.directory / 'data' / 'geo.sqlite'}", text)
        sources.write_text(text)
        self.password = re.search(r"(?m)^password=(.*)$", text).group(1)  # (the admin's, generated)
        self._ctl("db-create", "-a", "geo")
        self._ctl("shell", "geo", str(CUBE / "cubicweb_geonames" / "load.py"), "--", str(CITIES))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.server = subprocess.Popen([cubicweb_ctl(), "start", "geo"], env=self.env, cwd=self.directory,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                urllib.request.urlopen(self.url + "login", timeout=2).close()
                return
            except OSError:
                if self.server.poll() is not None:
                    raise RuntimeError(f"cubicweb-ctl start geo stopped ({self.server.returncode})") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the CubicWeb instance did not answer on {self.url} within a minute")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the geonames cities from a CubicWeb instance on loopback.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--install", action="store_true", help="make the virtual environment of CubicWeb, and stop")
    args = parser.parse_args()
    if args.install:
        print(cubicweb_ctl())
        return
    with tempfile.TemporaryDirectory() as directory:
        instance = Instance(Path(directory), args.port)
        instance.create()
        instance.start()
        print(f"{instance.url}: CW_USER=admin CW_PASSWORD={instance.password} (Ctrl-C stops it)", flush=True)
        try:
            while instance.server is not None and instance.server.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            instance.stop()


if __name__ == "__main__":
    main()
