"""Start Dask workers as SLURM jobs (dask-jobqueue) and run a bigalign job on them.

    pip install dask-jobqueue
    python cluster/slurm/slurm_cluster.py JOB [N_WORKERS]
"""

import sys

from dask_jobqueue import SLURMCluster
from distributed import Client

from bigalign.jobs import load_job
from bigalign.runner import run_job

if __name__ == "__main__":
    job_path, workers = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4
    with SLURMCluster() as cluster, Client(cluster) as client:
        cluster.scale(workers)
        client.wait_for_workers(1)
        print("\n".join(run_job(load_job(job_path), client=client).lines()))
