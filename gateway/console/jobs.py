"""Any background job (imports, tax files, rebuilds: services/kernel/jobs.py) followed to its end: the page asks the
job's own API route again every two seconds (htmx) while it is queued or running, then shows its result or error —
never a frozen page."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gateway.console.pages import Page, screen_page

router = APIRouter(prefix="/jobs")
JobId = Annotated[str, Path(max_length=64, pattern=r"^[\w-]+$")]
UNFINISHED = ("queued", "running")


async def _job_page(page: Page, service: str, job_id: str) -> Response:
    job = await page.calls.json("GET", f"/api/{service}/jobs/{job_id}")
    return await page.render("job.html", job=job, service=service, running=job["status"] in UNFINISHED,
                             fragment=page.is_htmx)


@router.get("/accounts/{job_id}")
async def accounts_job(page: Annotated[Page, screen_page("jobs_accounts")], job_id: JobId) -> Response:
    return await _job_page(page, "accounts", job_id)


@router.get("/collection/{job_id}")
async def collection_job(page: Annotated[Page, screen_page("jobs_collection")], job_id: JobId) -> Response:
    return await _job_page(page, "collection", job_id)


@router.get("/oversight/{job_id}")
async def oversight_job(page: Annotated[Page, screen_page("jobs_oversight")], job_id: JobId) -> Response:
    return await _job_page(page, "oversight", job_id)


@router.get("/benefits/{job_id}")
async def benefits_job(page: Annotated[Page, screen_page("jobs_benefits")], job_id: JobId) -> Response:
    return await _job_page(page, "benefits", job_id)
