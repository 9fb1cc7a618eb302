"""Clusters started by hand: faults, TLS, restart, and the deployment files."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from distributed import Client
from distributed.security import Security
from test_cli import demo_text

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).parent / "dask")
QUIET = {**os.environ, "PYTHONWARNINGS": "ignore"}


class HandCluster:
    """A `dask scheduler` and `dask worker` processes on loopback."""

    def __init__(self, directory: Path, workers: int, tls: list[str] | None = None):
        self.file = directory / "scheduler.json"
        self.tls = tls or []
        self.procs = [self._start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                                   ":0", "--scheduler-file", str(self.file)] + self.tls)]
        for _ in range(100):
            if self.file.exists() and self.file.stat().st_size:
                break
            time.sleep(0.1)
        self.workers = [self.add_worker() for _ in range(workers)]

    def _start(self, command):
        process = subprocess.Popen(command, env=QUIET, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(process) if hasattr(self, "procs") else None
        return process

    def add_worker(self):
        return self._start([DASK, "worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--host",
                            "127.0.0.1", "--no-dashboard", "--no-nanny"] + self.tls)

    def close(self):
        for p in self.procs[::-1]:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def person_job(directory: Path, n: int, extra: str = "") -> Path:
    text = demo_text(directory, n)
    job = directory / "people.toml"
    job.write_text(extra + "\n" + text)
    return job


def bigalign(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "bigalign", *map(str, args)], cwd=ROOT, env=QUIET,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finished(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, out + err
    return out, err


def processing_prefixes(client):
    return client.run_on_scheduler(
        lambda dask_scheduler: sorted({ts.prefix.name for ts in dask_scheduler.tasks.values()
                                       if ts.state == "processing"}))


def holder_of(client, prefix):
    """The address of a worker that holds a result of the tasks named ``prefix``."""
    return client.run_on_scheduler(
        lambda dask_scheduler: next(ws.address for ts in dask_scheduler.tasks.values()
                                    if ts.prefix.name == prefix and ts.who_has for ws in ts.who_has))


def worker_process(cluster, client, address):
    pids = client.run(os.getpid)
    return next(p for p in cluster.workers if p.pid == pids[address])


def test_a_worker_killed_during_alignment_changes_no_link(tmp_path):
    cluster = HandCluster(tmp_path, 3)
    try:
        job = person_job(tmp_path, 20_000)
        finished(bigalign("run", job, "--scheduler", cluster.file, "--output", tmp_path / "calm.parquet"))
        with Client(scheduler_file=str(cluster.file)) as client:
            run = bigalign("run", job, "--scheduler", cluster.file, "--output", tmp_path / "killed.parquet")
            deadline, victim = time.time() + 300, None
            while time.time() < deadline and run.poll() is None:
                if "score_pairs" in processing_prefixes(client):
                    # the worker that holds what every scoring task reads (the truth's hashes): the
                    # scheduler keeps one replica of it, and must compute it again
                    victim = worker_process(cluster, client, holder_of(client, "held"))
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(timeout=30)
                    break
                time.sleep(0.05)
            assert victim is not None and victim.poll() is not None, "the run ended before a worker could be killed"
            finished(run)
        calm = pd.read_parquet(tmp_path / "calm.parquet")
        killed = pd.read_parquet(tmp_path / "killed.parquet")
        assert len(calm) > 15_000
        pd.testing.assert_frame_equal(killed, calm)
    finally:
        cluster.close()


def make_certificate(directory: Path) -> dict[str, str]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True)
    return {"ca": str(cert), "cert": str(cert), "key": str(key)}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make certificates")
def test_a_job_runs_over_tls_and_a_client_without_certificates_is_refused(tmp_path):
    certs = make_certificate(tmp_path)
    tls = ["--tls-ca-file", certs["ca"], "--tls-cert", certs["cert"], "--tls-key", certs["key"]]
    cluster = HandCluster(tmp_path, 2, tls=["--protocol", "tls"] + tls)
    try:
        scheduler = yaml.safe_load(cluster.file.read_text())["address"]
        assert scheduler.startswith("tls://127.0.0.1:")
        job = person_job(tmp_path, 1000, extra="")
        text = job.read_text() + (f'\n[cluster]\nscheduler = "{scheduler}"\ntls_ca_file = "{certs["ca"]}"\n'
                                  f'tls_cert = "{certs["cert"]}"\ntls_key = "{certs["key"]}"\n')
        job.write_text(text)
        out, _ = finished(bigalign("run", job))
        assert "links written:" in out and (tmp_path / "links.parquet").exists()
        # Trusting the scheduler is not enough: it wants a client certificate signed by its CA.
        host, port = scheduler[len("tls://"):].rsplit(":", 1)
        context = ssl.create_default_context(cafile=certs["ca"])
        context.check_hostname = False
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with context.wrap_socket(raw) as tls:
                    tls.sendall(b"\0" * 8)
                    if tls.recv(1) == b"":
                        raise ConnectionError("closed by the scheduler")
        other = tmp_path / "other"
        other.mkdir()
        stranger = make_certificate(other)
        untrusted = Security(tls_ca_file=certs["ca"], tls_client_cert=stranger["cert"],
                             tls_client_key=stranger["key"], require_encryption=True)
        with pytest.raises((OSError, TimeoutError)):
            Client(scheduler, security=untrusted, timeout="3s")
        with pytest.raises((OSError, TimeoutError)):
            Client(scheduler.replace("tls://", "tcp://"), timeout="3s")
    finally:
        cluster.close()


def test_a_run_interrupted_after_blocking_resumes_from_its_checkpoint(tmp_path, client):
    address = client.scheduler.address
    job = person_job(tmp_path, 20_000, extra="checkpoint = true")
    first = bigalign("run", job, "--scheduler", address)
    manifest = tmp_path / "checkpoint" / "checkpoint.json"
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None and not manifest.exists():
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert manifest.exists(), "the candidate pairs were not checkpointed"
    assert not (tmp_path / "links.parquet").exists(), "the run was not interrupted before writing its links"
    out, err = finished(bigalign("run", job, "--scheduler", address))
    assert "resuming from the checkpoint" in err
    resumed = pd.read_parquet(tmp_path / "links.parquet")
    job.write_text(job.read_text().replace("checkpoint = true", ""))
    finished(bigalign("run", job, "--scheduler", address, "--output", tmp_path / "fresh.parquet"))
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(tmp_path / "fresh.parquet"))
    assert "F1" in out


def listening_on_every_interface() -> set[int]:
    """Ports of the TCP sockets listening on 0.0.0.0 or :: (Linux's /proc/net)."""
    ports = set()
    for name, anywhere in (("tcp", "00000000"), ("tcp6", "0" * 32)):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == "0A" and address == anywhere:
                ports.add(int(port, 16))
    return ports


def test_local_sh_starts_a_cluster_that_runs_a_job(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    env = {**QUIET, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = subprocess.Popen(["bash", str(ROOT / "cluster/local.sh"), "2", str(scheduler_file)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        for _ in range(100):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        with Client(scheduler_file=str(scheduler_file)) as c:
            c.wait_for_workers(2, timeout=60)
            ports = [w["services"]["dashboard"] for w in c.scheduler_info()["workers"].values()]
        # every server it starts listens on loopback only (the workers' web servers included)
        assert len(ports) == 2 and not set(ports) & listening_on_every_interface()
        out, _ = finished(bigalign("run", "jobs/cities_offline.toml", "--scheduler", scheduler_file, "--output",
                                   tmp_path / "cities.csv"))
        assert "F1 1.0000" in out
    finally:
        os.killpg(script.pid, signal.SIGTERM)
        script.wait(timeout=30)


def test_deployment_files_are_well_formed():
    job = yaml.safe_load((ROOT / "cluster/kubernetes/daskjob.yaml").read_text())
    assert job["apiVersion"] == "kubernetes.dask.org/v1" and job["kind"] == "DaskJob"
    container = job["spec"]["job"]["spec"]["containers"][0]
    assert container["args"][:2] == ["bigalign", "run"]
    cluster = job["spec"]["cluster"]["spec"]
    assert cluster["worker"]["spec"]["containers"][0]["args"][:2] == ["dask", "worker"]
    assert cluster["scheduler"]["spec"]["containers"][0]["args"] == ["dask", "scheduler"]
    values = yaml.safe_load((ROOT / "cluster/kubernetes/values.yaml").read_text())
    assert values["worker"]["image"]["repository"] == "bigalign"
    compose = yaml.safe_load((ROOT / "cluster/docker-compose.yml").read_text())
    assert set(compose["services"]) == {"scheduler", "worker", "runner"}
    assert compose["services"]["runner"]["command"][:2] == ["bigalign", "run"]
    dockerfile = (ROOT / "cluster/Dockerfile").read_text()
    assert "FROM ghcr.io/dask/dask:2026.8.0-py3.11" in dockerfile
    for path in ("cluster/local.sh", "cluster/slurm/bigalign.sbatch"):
        subprocess.run(["bash", "-n", str(ROOT / path)], check=True)
    assert "dask-scheduler" not in (ROOT / "cluster").joinpath("local.sh").read_text()
    # the SLURM recipe's scheduler is reachable from other nodes: TLS, and web servers on loopback
    sbatch = (ROOT / "cluster/slurm/bigalign.sbatch").read_text()
    assert "dask scheduler --protocol tls" in sbatch and "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True" in sbatch
    assert sbatch.count("--dashboard-address 127.0.0.1:") == 2


@pytest.mark.skipif(subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
                    if shutil.which("docker") else True, reason="docker compose is not installed here")
def test_docker_compose_config():
    subprocess.run(["docker", "compose", "-f", str(ROOT / "cluster/docker-compose.yml"), "config", "-q"],
                   check=True)


def test_connect_tunes_the_allocator_of_every_worker(client):
    import platform

    from bigalign.cluster import connect

    with connect(client) as active:
        tuned = active.run(lambda dask_worker: dask_worker.bigalign_allocator_tuned)
    assert list(tuned.values()) == [platform.libc_ver()[0] == "glibc"] * 2
    # a worker of threads in this very process: its allocator is this process's, left alone
    with connect(None, n_workers=1, processes=False, dashboard_address=":0") as active:
        assert list(active.run(lambda dask_worker: dask_worker.bigalign_allocator_tuned).values()) == [False]


def test_the_cpu_clock_counts_every_worker_process(client):
    from bigalign.cluster import cpu_clock

    def burn(seconds):
        start = time.process_time()
        while time.process_time() - start < seconds:
            pass

    clock = cpu_clock(client)
    before = clock()
    client.run(burn, 0.3)
    assert clock() - before >= 0.6  # the two workers' 0.3 s each, and what this process used meanwhile


def test_what_every_task_reads_survives_the_loss_of_the_workers_that_hold_it():
    """Scattered data would be lost with its last replica (the scheduler keeps one); a held value
    is computed again."""
    import numpy as np
    from distributed import LocalCluster, wait

    from bigalign.pipeline.graph import _held

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as local, Client(local) as client:
        value = np.arange(100_000, dtype=np.uint64)
        held = _held(client, value)
        wait(held)
        holders = list(client.who_has([held])[held.key])
        pids = client.run(os.getpid, workers=holders)
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 60
        while time.time() < deadline and (set(client.scheduler_info()["workers"]) & set(holders)):
            time.sleep(0.1)
        client.wait_for_workers(2, timeout=60)
        assert client.submit(np.sum, held).result() == value.sum()


def test_what_does_not_close_in_time_is_left_behind_and_said(caplog):
    """A client or local cluster is given CLOSE_SECONDS to close (distributed raises TimeoutError past
    it); a worker that does not answer then keeps no command from ending (`bigalign serve` once waited
    on its local cluster's close after Ctrl-C)."""
    from bigalign.cluster import CLOSE_SECONDS, close_within

    class Stuck:
        def close(self, timeout=None):
            self.timeout = timeout
            raise TimeoutError

    stuck = Stuck()
    close_within(stuck)
    assert stuck.timeout == CLOSE_SECONDS
    assert f"Stuck did not close within {CLOSE_SECONDS} s; left to end with this process" in caplog.text
