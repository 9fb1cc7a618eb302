"""``bigalign serve``: a web application to build, plan, run and review an alignment.

A job editor in the browser, as the seed's Nazca application was: choose
the sets (files, an upload, a SPARQL endpoint), see their columns; set the
treatments with a preview on sample records and the blocking; plan and run
on the Dask cluster, following the stages; review the links a page at a
time, two records side by side, marking them right or wrong into a
labelled-pairs file. The page edits ``job.toml`` in its directory and runs
the command line on it: whatever it does, ``bigalign run job.toml`` does.

:mod:`.workspace` (the job and the forms), :mod:`.commands` (plan and run
as processes), :mod:`.review` (links paged from their file, records from
the staged Parquet, marks), :mod:`.server` (the pages), :mod:`.toml`
(the job written back).
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ["serve"]


def serve(directory: str = ".", host: str = "127.0.0.1", port: int = 8700, scheduler: str | None = None,
          workers: int | None = None, announce: Any = print) -> None:
    """Serve the application on ``host:port`` until interrupted.

    Without ``scheduler``, a local cluster of worker processes starts beside
    it, and plans and runs go there. The application asks for a random token,
    given in the URL it announces (on loopback too: any page open in a browser
    can send requests to loopback), and answers only to the host names it is
    bound to.
    """
    import asyncio

    import tornado.httpserver
    import tornado.netutil
    from distributed import LocalCluster

    from ..cluster import close_within, quiet_shuffle_logs
    from ..errors import BigalignError
    from .server import App, make_app
    from .workspace import Workspace

    try:  # (the port first: a port in use is said before a cluster starts)
        sockets = tornado.netutil.bind_sockets(port, address=host)
    except OSError as err:
        raise BigalignError(f"cannot serve on {host}:{port} ({err.strerror}): choose another --port") from None
    quiet_shuffle_logs()
    token = secrets.token_urlsafe(24)
    cluster = None
    dashboard = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:8787")
        scheduler, dashboard = cluster.scheduler_address, cluster.dashboard_link
    app = App(Workspace(directory), scheduler, dashboard, token, host=host)

    async def main() -> None:
        tornado.httpserver.HTTPServer(make_app(app)).add_sockets(sockets)
        shown = f"[{host}]" if ":" in host else host
        announce(f"bigalign: serving {app.workspace.root} at http://{shown}:{port}/?token={token}")
        announce(f"bigalign: Dask dashboard: {dashboard or 'on the scheduler ' + scheduler}")
        await asyncio.Event().wait()

    try:
        asyncio.run(main())
    finally:
        if cluster is not None:
            close_within(cluster)
