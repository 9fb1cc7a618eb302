"""The command line: ``bigalign run | validate | plan | index | link | evaluate | report | serve``."""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from .errors import BigalignError, InputError
from .evaluate import cluster_quality, link_quality
from .io import read_pairs, read_table
from .jobs import Job, check_inputs, load_job

__all__ = ["exit_now", "main"]


def _overrides(args: argparse.Namespace) -> dict:
    """Command-line values over the job's; paths given here are relative to the working directory."""
    overrides: dict = {}
    if getattr(args, "workers", None) is not None:
        overrides.setdefault("cluster", {})["workers"] = args.workers
    if getattr(args, "connect_timeout", None) is not None:
        overrides.setdefault("cluster", {})["connect_timeout"] = args.connect_timeout
    if getattr(args, "scheduler", None):
        scheduler = args.scheduler
        is_file = "://" not in scheduler and (scheduler.endswith(".json") or os.sep in scheduler
                                              or os.path.exists(scheduler) or ":" not in scheduler)
        key = "scheduler_file" if is_file else "scheduler"
        overrides.setdefault("cluster", {})[key] = os.path.abspath(scheduler) if is_file else scheduler
    if getattr(args, "output", None):
        output = args.output
        overrides.setdefault("output", {})["path"] = output if "://" in output else os.path.abspath(output)
    return overrides


def _load(args: argparse.Namespace, resolve: bool = True) -> Job:
    job = load_job(args.job, _overrides(args), allow_modules=args.allow_module, resolve=resolve)
    if (getattr(args, "workers", None) is not None or getattr(args, "dashboard", False)) \
            and job.cluster.processes is None:
        # Asked for on the command line: a local cluster of worker processes and its dashboard, whatever the
        # size of the inputs (a small job would otherwise run in this process, without one).
        job = dataclasses.replace(job, cluster=dataclasses.replace(job.cluster, processes=True))
    return job


def _run(args: argparse.Namespace) -> int:
    from .runner import run_job

    summary = run_job(_load(args), show_progress=not args.quiet and sys.stderr.isatty())
    print("\n".join(summary.lines()))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .runner import generate_inputs

    job = _load(args, resolve=False)  # user code is checked, never imported nor called
    generate_inputs(job)
    files = check_inputs(job)
    for name, paths in files.items():
        print(f"{name}: {len(paths)} file(s): {', '.join(paths)}")
    print(f"treatments: {len(job.alignment.treatments)}; blocking: {job.alignment.blocking!r}")
    if job.user_code:
        print(f"user code (allowed, not imported by validate): {', '.join(job.user_code)}")
    print(f"{args.job}: valid")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from .planner import plan_job, plan_lines

    plan = plan_job(_load(args), show_progress=not args.quiet and sys.stderr.isatty(), suggest=args.suggest)
    print("\n".join(plan_lines(plan)))
    return 0


def _index(args: argparse.Namespace) -> int:
    from .index import build_index, index_lines, update_index

    to = args.to if "://" in args.to else os.path.abspath(args.to)
    if args.add or args.remove:
        manifest = update_index(_load(args), to, add=args.add, remove=args.remove, replace=args.replace)
    else:
        manifest = build_index(_load(args), to, show_progress=not args.quiet and sys.stderr.isatty())
    print("\n".join(index_lines(manifest, to)))
    return 0


def _link(args: argparse.Namespace) -> int:
    from .index import link_batch

    summary = link_batch(_load(args), args.index, args.records, show_progress=not args.quiet and sys.stderr.isatty(),
                         output=args.output and (args.output if "://" in args.output else os.path.abspath(args.output)),
                         add=args.add, replace=args.replace)
    print("\n".join(summary.lines()))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    found = read_table(args.links, [], "links or clusters")
    if "cluster_id" in found.columns:  # clusters, against each record's entity
        quality = cluster_quality(read_table(args.links, ["id", "cluster_id"], "clusters"),
                                  read_table(args.truth, ["id", "entity"], "entities")).as_dict()
        for key, value in quality.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
        return 0
    links, truth = read_pairs(args.links), read_pairs(args.truth)
    job = load_job(args.job, allow_modules=args.allow_module, resolve=False) if args.job else None
    quality = link_quality(links, truth, unordered=bool(job and job.alignment.dedupe)).as_dict()
    if job:
        summary_path = job.run_dir + "/candidates.json"
        try:
            with open(summary_path) as f:
                quality.update(json.load(f))
        except FileNotFoundError:
            raise InputError(f"{summary_path}: no blocking figures; run 'bigalign plan {args.job}' first") from None
    for key, value in quality.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    if not os.path.isfile(os.path.join(args.run_dir, "summary.json")):
        raise InputError(f"{args.run_dir}: not the directory of a finished run (no summary.json there)")
    print(write_report(args.run_dir))
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.screenshots:
        from .app.screenshots import take_screenshots

        for path in take_screenshots(args.screenshots):
            print(path)
        return 0
    from .app import serve

    os.makedirs(args.directory, exist_ok=True)
    serve(args.directory, host=args.host, port=args.port, scheduler=args.scheduler, workers=args.workers)
    return 0


def _job_arguments(command: argparse.ArgumentParser, cluster: bool = True) -> None:
    command.add_argument("job")
    command.add_argument("--allow-module", action="append", default=[], metavar="MODULE",
                         help="let the job use code from this top-level module (normalizers, metrics, key "
                              "transforms named by import path); repeat for several. A job file alone runs "
                              "only bigalign's built-ins")
    if cluster:
        command.add_argument("--scheduler", help="scheduler address or scheduler file (default: the job's, "
                                                 "DASK_SCHEDULER_ADDRESS, else a local cluster)")
        command.add_argument("--workers", type=int, help="start a local cluster of this many worker processes "
                                                          "(and its dashboard), whatever the inputs' size")
        command.add_argument("--dashboard", action="store_true",
                             help="start a local cluster and print its dashboard's link, however small the job "
                                  "(a small job otherwise runs in this process, without one)")
        command.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                             help="seconds to reach a running scheduler (default 10)")
        command.add_argument("--quiet", action="store_true",
                             help="no progress bars (none either when stderr is not a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bigalign", description="Data alignment for very large sets, on Dask.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job")
    _job_arguments(run)
    run.add_argument("--output", help="where to write the links (overrides [output] path; its extension "
                                      "must agree with the job's format)")
    run.set_defaults(func=_run)
    validate = commands.add_parser("validate", help="check a job and its inputs without running it (and "
                                                    "without importing any user code)")
    _job_arguments(validate, cluster=False)
    validate.set_defaults(func=_validate)
    plan = commands.add_parser("plan", help="dry run of the blocking: blocks, candidate pairs, estimates")
    _job_arguments(plan)
    plan.add_argument("--suggest", action="store_true", help="choose a blocking from the job's treatments and "
                                                            "data (as kind = \"auto\" does): the rules ranked, the "
                                                            "union chosen, its [blocking] to paste, and the job's own "
                                                            "blocking measured on the same likely matches")
    plan.set_defaults(func=_plan)
    index = commands.add_parser("index", help="index the job's targetset (or deduplicated set) once: its records "
                                              "encoded, their block keys, a learned model, a deduplication's "
                                              "entities; batches are then linked against it")
    _job_arguments(index)
    index.add_argument("--to", required=True, help="the index's directory (or an fsspec URL); a new version "
                                                   "when one is there")
    index.add_argument("--add", metavar="RECORDS", help="add these records (read as the job's targetset) to the "
                                                        "index instead of building it")
    index.add_argument("--remove", action="append", default=[], metavar="ID", help="remove this record from the "
                                                                                  "index; repeat for several")
    index.add_argument("--replace", action="store_true", help="with --add: records whose id the index holds "
                                                              "replace the old ones (else they are refused)")
    index.set_defaults(func=_index)
    link = commands.add_parser("link", help="link new records against an index of the job's targetset, as a "
                                            "run of the job would")
    _job_arguments(link)
    link.add_argument("--index", required=True, help="the index (see 'bigalign index')")
    link.add_argument("--records", required=True, help="the new records: a file, files (a glob) or URL, read "
                                                       "as the job reads its alignset; or a .toml file holding a "
                                                       "set's table (any source: SPARQL, SQL, files)")
    link.add_argument("--output", help="a file to write the links to instead of the job's output (its extension "
                                       "must agree with the job's format)")
    link.add_argument("--add", action="store_true", help="then add the records to the index (a new version)")
    link.add_argument("--replace", action="store_true", help="with --add: records whose id the index holds "
                                                             "replace the old ones (else they are refused)")
    link.set_defaults(func=_link)
    evaluate = commands.add_parser("evaluate", help="precision, recall and F1 of links against known pairs, or "
                                                    "of clusters against known entities")
    evaluate.add_argument("links", help="links (align_id, target_id), or clusters (set, id, cluster_id)")
    evaluate.add_argument("truth", help="the true pairs (align_id, target_id), or for clusters each record's "
                                        "entity (set, id, entity; set may be left out with one set)")
    evaluate.add_argument("--job", help="also report the blocking's pair completeness and reduction ratio "
                                        "(from the job's plan); a deduplication's pairs are unordered")
    evaluate.add_argument("--allow-module", action="append", default=[], help=argparse.SUPPRESS)
    evaluate.set_defaults(func=_evaluate)
    report = commands.add_parser("report", help="rebuild report.html from a finished run's outputs")
    report.add_argument("run_dir", help="the directory of the run's output")
    report.set_defaults(func=_report)
    serve = commands.add_parser("serve", help="the web application: build, plan, run and review a job")
    serve.add_argument("directory", nargs="?", default=".",
                       help="where the job (job.toml), uploads and output live (default: here)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only); the "
                                                          "pages ask for the token in the printed URL")
    serve.add_argument("--port", type=int, default=8700)
    serve.add_argument("--scheduler", help="run on this scheduler (default: a local cluster started here)")
    serve.add_argument("--workers", type=int, help="workers of the local cluster (default 2)")
    serve.add_argument("--screenshots", metavar="DIR", help="write a screenshot of each page, on generated "
                                                            "data, to DIR and stop (needs Chromium)")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The library logs its status (the dashboard's link, a resumed run); the command line shows it.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bigalign: %(message)s"))
    logger = logging.getLogger("bigalign")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return args.func(args)
    except BigalignError as err:  # what a user can mend: one line
        print(f"bigalign: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bigalign: interrupted; nothing incomplete was left under a final name", file=sys.stderr)
        return 130
    except Exception:  # anything else is a bug: its traceback, and where to send it
        traceback.print_exc()
        print("bigalign: this is a bug in bigalign; please report it with the traceback above", file=sys.stderr)
        return 1


def exit_now(code: int) -> NoReturn:
    """End the process at once, as the ``bigalign`` command does. What was
    registered to run at exit runs; the interpreter's teardown of every
    module and object, one by one, is skipped: 0.3–0.5 s after pandas, Arrow
    and Dask, a tenth of a small job (every file is written, closed and
    renamed by then)."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

