"""``bigalign plan``: the blocking alone, measured, and the full run estimated."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import numpy as np

from .blocking import AutoBlocking
from .blocking.auto import choice_lines, suggestion_lines
from .cluster import NoCluster
from .comparisons import shown_levels
from .errors import JobError
from .io import atomic_path
from .job_tables import WORKER_LIBRARIES
from .jobs import Job, check_inputs
from .pipeline import encode_records, run_alignment, timed
from .pipeline.candidates import MAX_TASK_PAIRS
from .pipeline.choose import choose_blocking
from .runner import (
    alignment_inputs,
    check_unblocked,
    cluster_for,
    generate_inputs,
    read_truth,
    truth_hashes,
)
from .staging import stage_inputs
from .treatments import global_pair_distances

__all__ = ["model_lines", "peak_bytes_per_worker", "plan_job", "plan_lines", "scoring_rate"]


def scoring_rate(job: Job, align_sample: Any, target_sample: Any, pairs: int = 50_000) -> float:
    """Pairs per second one worker thread scores with the job's treatments,
    measured on random pairs of sampled records."""
    rng = np.random.default_rng(0)
    a = [t.encode(align_sample) for t in job.alignment.treatments]
    b = [t.encode(target_sample, "target" if job.targetset else "align") for t in job.alignment.treatments]
    ia = rng.integers(0, len(align_sample), pairs)
    ib = rng.integers(0, len(target_sample), pairs)
    clock = time.perf_counter()
    global_pair_distances(job.alignment.treatments, [e.iloc[ia].reset_index(drop=True) for e in a],
                          [e.iloc[ib].reset_index(drop=True) for e in b])
    return pairs / max(1e-9, time.perf_counter() - clock)


def peak_bytes_per_worker(bytes_per_record: float, records: int, dedupe: bool, candidate_pairs: int,
                          largest_block_pairs: int, n_workers: int) -> int:
    """A worker's peak memory in a run, estimated: its libraries, its share of the encoded records (three
    copies: read, encoded, shuffled; a deduplicated set is encoded on both sides) and of the candidate pairs
    joined with both records' values, and the pairs of one task of the largest block (at most
    ``MAX_TASK_PAIRS``)."""
    pair_bytes = 16 + 2 * bytes_per_record
    records_bytes = 3 * bytes_per_record * records * (2 if dedupe else 1)
    largest_task = min(largest_block_pairs, MAX_TASK_PAIRS) * pair_bytes
    return int(WORKER_LIBRARIES + (records_bytes + candidate_pairs * pair_bytes) / n_workers + largest_task)


def plan_job(job: Job, client: Any = None, show_progress: bool = True, suggest: bool = False) -> dict:
    """Measure the blocking of a job and estimate its full run; write
    ``candidates.json`` beside the output (``bigalign evaluate --job``
    reads it). A blocking of kind ``"auto"`` is chosen first; with ``suggest``,
    a blocking is chosen for the job whatever its own (see
    :mod:`bigalign.pipeline.choose`), and its own is measured against the same
    likely matches."""
    generate_inputs(job)
    files = check_inputs(job)
    os.makedirs(job.run_dir, exist_ok=True)
    truth = truth_hashes(job, read_truth(job)[0]) if job.truth else None
    with cluster_for(job, client, files) as active:
        n_workers = max(1, len(active.scheduler_info()["workers"]))
        where = "in this process, without a cluster" if isinstance(active, NoCluster) else f"on {n_workers} worker(s)"
        seconds: dict[str, float] = {}
        with timed(seconds, "blocking"):
            records, counts = stage_inputs(active, job, files, os.path.join(job.run_dir, "rejects.csv"),
                                           show_progress)
            check_unblocked(job, counts)
            align_records, target_records = alignment_inputs(job, records)
            alignment, choice, not_estimated = job.alignment, None, None
            auto = alignment.blocking if isinstance(alignment.blocking, AutoBlocking) else AutoBlocking()
            own = None if isinstance(alignment.blocking, AutoBlocking) else alignment.blocking
            try:  # (a job's own blocking: its pair completeness estimated on the likely matches a choice finds)
                choice = choose_blocking(active, align_records, target_records,
                                         dataclasses.replace(alignment, blocking=auto), own)
            except JobError as err:
                if suggest or own is None:
                    raise
                not_estimated = str(err).removeprefix("blocking: ")
            if own is None and choice is not None:
                alignment = dataclasses.replace(alignment, blocking=choice.blocking)
            run = run_alignment(active, align_records, target_records, alignment, show_progress=show_progress,
                                score=False, truth_hashes=truth,
                                random_pairs=choice.random_pairs if choice is not None else None)
        align_sample = align_records.head(2000, npartitions=-1)
        target_sample = target_records.head(2000, npartitions=-1)
    rate = scoring_rate(job, align_sample, target_sample)
    # (the target side: its records have the most block keys)
    encoded = encode_records(target_sample, alignment.treatments, run.blocking or alignment.blocking, "target",
                             "targetset" if job.targetset else "alignset")
    bytes_per_record = encoded.memory_usage(deep=True).sum() / max(1, len(target_sample))
    kept = {name: r.get("records", r["kept"]) for name, r in counts.items()}
    cross = job.cross_product(kept)
    stats = run.stats
    plan = {
        "records": kept,
        "blocks": stats.blocks, "block_pairs": stats.block_pairs, "candidate_pairs": stats.candidate_pairs,
        "reduction_ratio": 1.0 - stats.candidate_pairs / max(1, cross),
        "largest_block_pairs": stats.largest_block_pairs,
        "largest_block_share": stats.largest_block_pairs / max(1, stats.block_pairs),
        "excluded_blocks": stats.excluded_blocks, "excluded_pairs": stats.excluded_pairs,
        "workers": n_workers, "where": where, "scoring_pairs_per_second_per_worker": rate,
        "estimated_seconds": seconds["blocking"] + stats.candidate_pairs / (rate * n_workers),
        "estimated_peak_bytes_per_worker": peak_bytes_per_worker(bytes_per_record, sum(kept.values()),
                                                                 job.alignment.dedupe, stats.candidate_pairs,
                                                                 stats.largest_block_pairs, n_workers),
    }
    if job.cluster.memory_limit not in (None, "auto") and not isinstance(active, NoCluster):
        from dask.utils import parse_bytes

        plan["memory_limit_bytes"] = parse_bytes(job.cluster.memory_limit)
    if choice is not None and (suggest or own is None):
        plan["blocking_choice"] = choice.as_dict()
        plan["blocking_choice_lines"] = suggestion_lines(choice) if suggest else choice_lines(choice.as_dict())
    elif choice is not None:
        plan["estimated_pair_completeness"] = {"value": choice.compared, "likely_matches": choice.likely_matches,
                                               "sample": choice.sample, "why": "no likely match in the samples"}
    else:
        plan["estimated_pair_completeness"] = {"value": None, "why": not_estimated}
    if truth is not None:
        plan["true_pairs"] = len(truth)
        plan["pair_completeness"] = stats.true_pairs_kept / max(1, len(truth))
    model = run.scorer.summary(job.alignment.treatments, job.alignment.threshold == "auto")
    if model is not None:
        plan["model"] = model
        plan["model_seconds"] = run.seconds.get("model", 0.0)
    with atomic_path(os.path.join(job.run_dir, "candidates.json")) as tmp, open(tmp, "w") as f:
        json.dump(plan, f, indent=2)
    return plan


def plan_lines(plan: dict) -> list[str]:
    """What the command line prints of a plan."""
    lines = ["records: " + " × ".join(f"{n} ({name})" for name, n in plan["records"].items()),
             f"blocks: {plan['blocks']}, block pairs: {plan['block_pairs']}, candidate pairs: "
             f"{plan['candidate_pairs']} (reduction ratio {plan['reduction_ratio']:.6f})",
             f"largest block: {plan['largest_block_pairs']} pairs, {plan['largest_block_share']:.2%} of block pairs; "
             f"excluded blocks: {plan['excluded_blocks']}"]
    if "pair_completeness" in plan:
        lines.append(f"pair completeness: {plan['pair_completeness']:.4f} of {plan['true_pairs']} known pairs")
    estimated = plan.get("estimated_pair_completeness")
    if estimated and estimated["value"] is not None:
        lines.append(f"estimated pair completeness: {estimated['value']:.4f}, without labels (on the "
                     f"{estimated['likely_matches']} likely matches of {estimated['sample']} sampled records that "
                     "kind = \"auto\" chooses on; --suggest ranks the rules it chooses from)")
    elif estimated:
        lines.append(f"estimated pair completeness: none ({estimated['why']})")
    if "model" in plan:
        lines += model_lines(plan["model"])
    lines.append(f"estimate for the full run {plan['where']}: {plan['estimated_seconds']:.0f} s, "
                 f"~{plan['estimated_peak_bytes_per_worker'] / 2**20:.0f} MiB per worker "
                 f"(scoring {plan['scoring_pairs_per_second_per_worker']:,.0f} pairs/s per worker)")
    limit = plan.get("memory_limit_bytes")
    if limit and 0.8 * limit < plan["estimated_peak_bytes_per_worker"]:
        lines.append(f"memory_limit {limit / 2**20:,.0f} MiB per worker is below what this estimate needs with the "
                     f"pause at 80% (~{plan['estimated_peak_bytes_per_worker'] / 0.8 / 2**20:,.0f} MiB): workers "
                     "would pause, and the run stop; raise it, or use fewer workers")
    return lines + plan.get("blocking_choice_lines", [])  # (last: a suggestion ends with the TOML to paste)


def model_lines(model: dict) -> list[str]:
    """A fitted model as text: per treatment and level, m, u and the weight log2(m/u)."""
    source = f"m from {model['known_pairs']} labelled pairs" if model["m_from"] == "labels" else "m by EM"
    lines = [f"model: Fellegi–Sunter ({source}, u from random pairs), prior {model['prior']:.4g} "
             f"(weight {model['prior_weight']:+.2f}), {model['expected_matches']:,.0f} matches expected among the "
             f"candidates; links at match probability ≥ {model['threshold']:.4g}"
             f"{' (auto)' if model['auto_threshold'] else ''}",
             f"  {'attribute':<28} {'level':<12} {'m':>8} {'u':>10} {'weight':>8}"]
    for t in model["treatments"]:  # (a group: the levels its candidates reach)
        for level in shown_levels(t):
            lines.append(f"  {t['attribute'][:28]:<28} {t['levels'][level]:<12} {t['m'][level]:>8.4f} "
                         f"{t['u'][level]:>10.3g} {t['weights'][level]:>+8.2f}")
    for tried in model.get("groups_found", []):
        found = (f"one comparison (the model finds {tried['records']:,.0f} more records' counterparts)" if tried["kept"]
                 else f"weighed apart (as one: {tried['records']:+,.0f} records' counterparts)")
        lines.append(f"  {', '.join(tried['members'])} disagree together among likely matches: {found}")
    return lines
