"""The ledger rebuild as a background job (services/oversight/rebuild.py): an officer starts it (202 + job
id), it reports per stream what it replayed, one runs at a time, and only officers start it."""

import asyncio

from sqlmodel import Session

from services.oversight.ledger.models import LedgerFundPeriod
from tests.support.e2e import wait_for
from tests.support.oversight import PEN, collected, publish


async def test_an_officer_rebuilds_the_ledger_as_a_job_and_the_figures_stay(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    async with start_service("oversight") as oversight:
        await publish(oversight, collected((PEN, 202401, "e1", 100, 0, 0)),
                      collected((PEN, 202401, "e2", 250, 0, 0), prefix="b"))

        def principal() -> int | None:
            with Session(oversight.app.state.engine) as session:
                row = session.get(LedgerFundPeriod, (202401, PEN))
                return row.tax_principal_fen if row else None

        async def applied() -> bool:
            return principal() == 350

        await wait_for(applied, timeout=30)
        assert (await oversight.post("/ledger/rebuild", headers=auth("accountant"))).status_code == 403

        response = await oversight.post("/ledger/rebuild", headers=officer)
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/jobs/{job['id']}" and job["kind"] == "oversight.ledger_rebuild"
        second = await oversight.post("/ledger/rebuild", headers=officer)
        if second.json()["status"] in ("queued", "running"):  # one rebuild at a time: the same job
            assert second.json()["id"] == job["id"]

        async def done() -> dict | None:
            body = (await oversight.get(f"/jobs/{job['id']}", headers=officer)).json()
            return body if body["status"] in ("succeeded", "failed") else None

        body = await wait_for(done, timeout=60)
        assert body["status"] == "succeeded", body
        assert body["result"]["parts"] == ["mirror", "ledger", "facts", "receipts"]  # oversight's own books, all
        assert set(body["result"]["streams"]) == {"ACCOUNTS", "EXCHANGE", "COLLECTION", "BENEFITS"}
        assert body["result"]["streams"]["COLLECTION"]["applied"] == 2
        assert principal() == 350  # the same figures, counted once
        other_officer = auth("oversight_officer", subject="officer.li")
        assert (await oversight.get(f"/jobs/{job['id']}", headers=other_officer)).status_code == 200
        assert (await oversight.get(f"/jobs/{job['id']}", headers=auth("internal_auditor"))).status_code == 200

        # the consumers run again after the rebuild
        await publish(oversight, collected((PEN, 202401, "e3", 1, 0, 0), prefix="c"))

        async def later() -> bool:
            await asyncio.sleep(0)
            return principal() == 351

        await wait_for(later, timeout=30)
