import pytest
from distributed import Client, LocalCluster


@pytest.fixture(scope="session")
def client():
    """A real cluster: two worker processes on loopback."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c
