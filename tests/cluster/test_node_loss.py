"""Losing NATS nodes for a while, not just a restart (issue 13, item 5): accounts and oversight run on a 3-node
cluster with R3 streams. With one node gone the remaining quorum carries every event; with a second node gone
there is no quorum, yet the service keeps acknowledging writes (each is committed with its outbox row) and the
relay publishes them once a quorum is back. At the end every registered employer is in oversight's mirror once.

The outage lasts SIFUND_NODE_LOSS_SECONDS (default 10 s per phase; `make chaos` uses minutes): it is the fault
schedule, writes keep coming during it, and every check after it waits on a condition."""

import os
import time

import pytest
from stdnum.cn import uscc as uscc_mod

from tests.cluster.conftest import retried, wait_until

REGION = "150102"
OUTAGE_SECONDS = float(os.environ.get("SIFUND_NODE_LOSS_SECONDS", "10"))
RECOVERY_SECONDS = 120.0
REGISTERED = "accounts.employer.registered.v1"


def make_uscc(serial: int) -> str:
    body = f"91150102{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


@pytest.fixture
def settings(make_settings, cluster):
    return make_settings(cluster.url, nats_replicas=3)


class Registrar:
    """Registers employers through accounts' API and remembers every one acknowledged with 201."""

    def __init__(self, accounts, headers):
        self.accounts = accounts
        self.headers = headers
        self.acknowledged: dict[str, str] = {}  # uscc → employer id
        self._serial = 0

    async def register_one(self) -> None:
        self._serial += 1
        uscc = make_uscc(self._serial)
        response = await self.accounts.post("/employers", headers=self.headers,
                                            json={"uscc": uscc, "name": f"某某公司{self._serial}", "region": REGION})
        assert response.status_code == 201, response.text  # the write never depends on the bus
        self.acknowledged[uscc] = response.json()["id"]

    async def keep_registering(self, seconds: float) -> int:
        """Register employers one after another for ``seconds`` (the outage's length); returns how many."""
        before = len(self.acknowledged)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or len(self.acknowledged) == before:
            await self.register_one()
        return len(self.acknowledged) - before


async def stream_leader(cluster, js, stream: str):
    info = await retried(lambda: js.stream_info(stream), f"{stream} info")
    return cluster.node(info.cluster.leader)


async def test_writes_are_acknowledged_through_node_loss_and_quorum_loss(cluster, start_service, auth):
    async with start_service("accounts") as accounts, start_service("oversight") as oversight:
        registrar = Registrar(accounts, auth("agency_clerk", region=REGION, subject="clerk.li"))
        operator, officer = auth("it_admin"), auth("oversight_officer", region="150000")

        async def mirrored() -> dict[str, int]:
            counts: dict[str, int] = {}
            params = {"limit": 500}
            while rows := (await oversight.get("/mirror/employers", params=params, headers=officer)).json():
                for row in rows:
                    counts[row["uscc"]] = counts.get(row["uscc"], 0) + 1
                params["after"] = rows[-1]["employer_id"]
            return counts

        async def all_mirrored():
            counts = await mirrored()
            return set(registrar.acknowledged) <= set(counts) and counts

        async def backlog() -> int:
            return (await accounts.get("/admin/outbox", headers=operator)).json()["backlog"]

        for _ in range(5):
            await registrar.register_one()
        await wait_until(all_mirrored, "the first employers in oversight", RECOVERY_SECONDS)

        js = accounts.app.state.bus.js
        first_lost = await stream_leader(cluster, js, "ACCOUNTS")
        first_lost.kill()  # the ACCOUNTS stream leader, gone for the whole outage
        during_node_loss = await registrar.keep_registering(OUTAGE_SECONDS)
        await wait_until(all_mirrored, "events carried by the two remaining nodes", RECOVERY_SECONDS)

        second_lost = next(node for node in cluster.nodes if node is not first_lost)
        second_lost.kill()  # no quorum: JetStream cannot store an event now
        during_quorum_loss = await registrar.keep_registering(OUTAGE_SECONDS)
        assert await backlog() > 0  # acknowledged to the clerk, held in the outbox

        cluster.restart(second_lost)
        cluster.restart(first_lost)
        await wait_until(lambda: _zero(backlog), "the outbox drained once a quorum was back", RECOVERY_SECONDS)
        counts = await wait_until(all_mirrored, "every acknowledged employer in oversight", RECOVERY_SECONDS)

        assert set(counts) == set(registrar.acknowledged)  # nothing lost, nothing invented
        assert set(counts.values()) == {1}
        stored = await retried(lambda: js.stream_info("ACCOUNTS", subjects_filter=REGISTERED), "ACCOUNTS subjects")
        assert stored.state.subjects == {REGISTERED: len(registrar.acknowledged)}  # each event stored once
        print(f"{len(registrar.acknowledged)} employers acknowledged: {during_node_loss} with node "
              f"{first_lost.server_name} down, {during_quorum_loss} without a quorum; 0 lost, 0 doubled")


async def _zero(backlog) -> bool:
    return await backlog() == 0
