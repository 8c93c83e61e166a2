"""Docker leases, on a real engine: a pool reaps only containers whose lease has ended, so on an
engine shared by many hosts it never removes a neighbour's live worker (issue 11, item 12)."""

from __future__ import annotations

import time

import pytest

from sandbox import parse_tests
from tests.sandbox.conftest import LIMITS, require_backend, test_config

GOOD = "def f(x):\n    return x + 1\n"


@pytest.fixture(scope="module")
def engine():
    require_backend("docker")
    from sandbox import docker_backend

    config = test_config("docker")
    docker_backend.ensure_image(config)
    return docker_backend._client(), config


def _sleeper(client, config, labels: dict) -> str:
    """A container labelled as a sandbox worker, as another host would have made it."""
    api = client.api
    cid = api.create_container(config.image, command=["/usr/bin/python3", "-I", "-S", "-c", "import time; time.sleep(300)"],
                               labels=labels, host_config=api.create_host_config(network_mode="none"))["Id"]
    api.start(cid)
    return cid


def _listed(client) -> set[str]:
    from sandbox import docker_backend

    return {c["Id"] for c in client.api.containers(all=True, filters={"label": f"{docker_backend.LABEL}=1"})}


def _remove(client, *cids: str) -> None:
    for cid in cids:
        try:
            client.api.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - reaped already
            pass


def test_reap_spares_another_hosts_live_container_and_removes_an_expired_one(engine):
    from sandbox import docker_backend as db

    client, config = engine
    owner = {db.LABEL: "1", "plumline.owner": "another-host.example:4242"}
    live = _sleeper(client, config, {**owner, db.LEASE_LABEL: str(int(time.time() + 3600))})
    expired = _sleeper(client, config, {**owner, db.LEASE_LABEL: str(int(time.time() - db.REAP_GRACE_S - 60))})
    try:
        db.reap(client)
        listed = _listed(client)
        assert live in listed, "a live container of another host was reaped"
        assert expired not in listed, "a container whose lease ended was not reaped"
    finally:
        _remove(client, live, expired)


def test_reap_waits_out_the_clock_skew_grace(engine):
    from sandbox import docker_backend as db

    client, config = engine
    just_ended = _sleeper(client, config, {db.LABEL: "1", "plumline.owner": "another-host.example:1",
                                           db.LEASE_LABEL: str(int(time.time() - 1))})
    try:
        db.reap(client)
        assert just_ended in _listed(client)
        db.reap(client, now=time.time() + db.REAP_GRACE_S + 10)
        assert just_ended not in _listed(client)
    finally:
        _remove(client, just_ended)


def test_worker_container_carries_its_lease_and_ends_with_it(engine):
    from sandbox import docker_backend as db

    client, config = engine
    worker = db.DockerWorker(client, config)
    worker.lease_s = 2
    try:
        t0 = time.time()
        worker.ensure_started()
        cid = worker.container_id
        until = float(client.api.inspect_container(cid)["Config"]["Labels"][db.LEASE_LABEL])
        assert t0 <= until + 1 and until <= time.time() + 2
        deadline = time.monotonic() + 60
        while cid in _listed(client) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert cid not in _listed(client), "the container outlived its lease"
    finally:
        worker.kill()


def test_a_job_never_starts_on_a_lease_that_could_end_during_it(engine):
    from sandbox import docker_backend as db

    client, config = engine
    worker = db.DockerWorker(client, config)
    tests = parse_tests("assert f(1) == 2\nassert f(2) == 3\n")
    try:
        assert all(v.passed for v in worker.run(GOOD, tests, LIMITS))
        first = worker.container_id
        assert worker.expires_at - time.time() >= worker.need_s - 1  # the lease covered that job
        worker.expires_at = time.time() + 1  # as if the lease were nearly over
        assert all(v.passed for v in worker.run(GOOD, tests, LIMITS))
        assert worker.container_id != first, "a job started on a lease about to end"
    finally:
        worker.kill()
