"""The command line: ``bigalign run | validate | plan | evaluate | report``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


from .evaluate import link_quality
from .io import InputError, read_pairs
from .jobs import JobError, check_inputs, load_job
from .pipeline import RecordError

__all__ = ["main"]


def _overrides(args: argparse.Namespace) -> dict:
    overrides: dict = {}
    if getattr(args, "workers", None) is not None:
        overrides.setdefault("cluster", {})["workers"] = args.workers
    if getattr(args, "scheduler", None):
        key = "scheduler" if "://" in args.scheduler or ":" in args.scheduler and not args.scheduler.endswith(".json") \
            else "scheduler_file"
        overrides.setdefault("cluster", {})[key] = args.scheduler
    if getattr(args, "output", None):
        overrides.setdefault("output", {})["path"] = args.output
    return overrides


def _run(args: argparse.Namespace) -> int:
    from .runner import run_job

    job = load_job(args.job, _overrides(args))
    run_job(job, show_progress=not args.quiet and sys.stderr.isatty())
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .runner import generate_inputs

    job = load_job(args.job)
    generate_inputs(job)
    files = check_inputs(job)
    for name, paths in files.items():
        print(f"{name}: {len(paths)} file(s): {', '.join(paths)}")
    print(f"treatments: {len(job.treatments)}; blocking: {job.blocking!r}")
    print(f"{args.job}: valid")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from .planner import plan_job

    job = load_job(args.job, _overrides(args))
    plan_job(job, show_progress=not args.quiet and sys.stderr.isatty())
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    links, truth = read_pairs(args.links), read_pairs(args.truth)
    quality = link_quality(links, truth).as_dict()
    if args.job:
        summary_path = load_job(args.job).run_dir + "/candidates.json"
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

    print(write_report(args.run_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bigalign", description="Data alignment for very large sets, on Dask.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job")
    run.add_argument("job")
    run.add_argument("--scheduler", help="scheduler address or scheduler file (default: the job's, "
                                         "DASK_SCHEDULER_ADDRESS, else a local cluster)")
    run.add_argument("--workers", type=int, help="workers of the local cluster")
    run.add_argument("--output", help="where to write the links (overrides [output] path)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bars (none either when stderr is not a terminal)")
    run.set_defaults(func=_run)
    validate = commands.add_parser("validate", help="check a job and its inputs without running it")
    validate.add_argument("job")
    validate.set_defaults(func=_validate)
    plan = commands.add_parser("plan", help="dry run of the blocking: blocks, candidate pairs, estimates")
    plan.add_argument("job")
    plan.add_argument("--scheduler")
    plan.add_argument("--workers", type=int)
    plan.add_argument("--quiet", action="store_true")
    plan.set_defaults(func=_plan)
    evaluate = commands.add_parser("evaluate", help="precision, recall and F1 of links against known pairs")
    evaluate.add_argument("links")
    evaluate.add_argument("truth")
    evaluate.add_argument("--job", help="also report the blocking's pair completeness and reduction ratio "
                                        "(from the job's plan)")
    evaluate.set_defaults(func=_evaluate)
    report = commands.add_parser("report", help="rebuild report.html from a finished run's outputs")
    report.add_argument("run_dir", help="the directory of the run's output")
    report.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (JobError, InputError, RecordError, ValueError) as err:
        print(f"bigalign: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bigalign: interrupted; nothing incomplete was left under a final name", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
