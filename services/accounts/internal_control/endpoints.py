"""The agency's internal control (稽核内控): samples of past business drawn from the archive, the internal
auditors' findings, and the yearly report submitted to oversight."""

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.accounts.internal_control import report, risk, sampling, service
from services.accounts.internal_control.jobs import SAMPLE_DRAW, SAMPLE_REDRAW
from services.accounts.internal_control.models import ControlSample, SampledItem
from services.accounts.internal_control.schemas import (
    FindingRequest,
    ReportOut,
    ReportRequest,
    SampleDetail,
    SampledItemOut,
    SampleOut,
    SamplePage,
    SampleRequest,
)
from services.kernel.auth import allow
from services.kernel.db import snapshot_session
from services.kernel.documents.endpoints import PDF_RESPONSES, pdf_response
from services.kernel.jobs import JobOut, accepted
from services.kernel.service_app import EngineDep, SessionDep

AUDITORS = allow("internal_auditor")
# Oversight's officers read what the agency's auditors drew and found (the cases they get come from it).
READERS = allow("internal_auditor", "oversight_officer")

router = APIRouter(prefix="/internal-control", tags=["internal control"])


def _sample(sample: ControlSample) -> SampleOut:
    return SampleOut(**{**sample.model_dump(), "weights": json.loads(sample.weights)})


def _item(item: SampledItem) -> SampledItemOut:
    return SampledItemOut(**item.model_dump(), risk_label=risk.LABELS.get(item.risk, item.risk))


def _detail(session, sample: ControlSample) -> SampleDetail:  # noqa: ANN001
    return SampleDetail(**_sample(sample).model_dump(), items=[_item(i) for i in service.items_of(session, sample.id)])


@router.post("/samples", status_code=202, response_model=JobOut, dependencies=[AUDITORS],
             summary="Draw a sample of an ended month or quarter of the area's business (high-risk acts weighted)",
             description="A background job (202, polled at `/api/accounts/jobs/{id}`; its result names the sample). "
                         "The acts filed in the archive in the period, each once; the seed (given, or drawn now) and "
                         "the population's SHA-256 are recorded so the draw can be made again. Refused at once: 422 "
                         "INVALID_CONTROL_PERIOD / CONTROL_PERIOD_NOT_ENDED; 409 CONTROL_SAMPLE_EXISTS for a period "
                         "already drawn in the area.")
async def draw_sample(body: SampleRequest, request: Request, engine: EngineDep) -> Any:
    with snapshot_session(engine) as session:
        service.check_drawable(session, kind=body.kind, period_label=body.period)
    params = {"kind": body.kind, "period": body.period.strip(), "rate_percent": body.rate_percent,
              "seed": sampling.new_seed() if body.seed is None else body.seed}
    job, _ = await anyio.to_thread.run_sync(lambda: request.app.state.jobs.submit(SAMPLE_DRAW.name, params=params))
    return accepted(request, job)


@router.get("/samples", response_model=SamplePage, dependencies=[READERS], summary="Samples of the area, newest first")
def list_samples(session: SessionDep, year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
                 after: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> SamplePage:
    rows, next_cursor = service.list_samples(session, year=year, after=after, limit=limit)
    return SamplePage(items=[_sample(s) for s in rows], next_cursor=next_cursor)


@router.get("/samples/{sample_id}", response_model=SampleDetail, dependencies=[READERS],
            summary="A sample with the acts drawn and the finding on each")
def get_sample(sample_id: str, session: SessionDep) -> SampleDetail:
    return _detail(session, service.get_sample(session, sample_id))


@router.post("/samples/{sample_id}/redraw", status_code=202, response_model=JobOut, dependencies=[READERS],
             summary="Make the draw again from the recorded seed: is the population the same, is the sample?",
             description="A background job (the population read again); its result: `population_unchanged`, "
                         "`identical`, the acts drawn.")
async def redraw(sample_id: str, request: Request, engine: EngineDep) -> Any:
    with snapshot_session(engine) as session:
        service.get_sample(session, sample_id)  # 404 / 403 at once
    job, _ = await anyio.to_thread.run_sync(
        lambda: request.app.state.jobs.submit(SAMPLE_REDRAW.name, params={"sample_id": sample_id}))
    return accepted(request, job)


@router.post("/samples/{sample_id}/items/{sampled_id}/finding", response_model=SampledItemOut,
             dependencies=[AUDITORS],
             summary="Record the finding on a sampled act: conform, or not conform with the reason",
             description="Not by the one who decided the act (403 CONTROL_REVIEW_OWN_ACT); once (409 "
                         "CONTROL_FINDING_RECORDED). A non-conformity goes to oversight, which opens a case.")
def record_finding(sample_id: str, sampled_id: str, body: FindingRequest, session: SessionDep) \
        -> SampledItemOut:
    return _item(service.record_finding(session, sample_id, sampled_id, finding=body.finding, reason=body.reason))


@router.post("/reports/{year}", status_code=201, response_class=Response, responses=PDF_RESPONSES,
             dependencies=[AUDITORS],
             summary="Generate the year's internal-control report (PDF) and submit it to oversight (001 第二十四条)",
             description="From the year's samples and findings in the area, the summary and the staff figures of "
                         "the identity reports; once per year and area (409 CONTROL_REPORT_SUBMITTED).")
def submit_report(year: Annotated[int, Path(ge=1990, le=2200)], body: ReportRequest, engine: EngineDep) -> Response:
    staff = report.StaffFigures(**body.staff.model_dump()) if body.staff else None
    _, document = report.submit_report(engine, year, body.summary, staff)
    return pdf_response(document)


@router.get("/reports", response_model=list[ReportOut], dependencies=[READERS],
            summary="The yearly reports submitted by the area")
def list_reports(session: SessionDep) -> list[ReportOut]:
    return [ReportOut.model_validate(r, from_attributes=True) for r in report.reports_of(session)]


@router.get("/reports/{report_id}/document", response_class=Response,
            responses={200: PDF_RESPONSES[201]}, dependencies=[READERS],
            summary="The PDF of a submitted yearly report, the very bytes issued (verifiable on /verify)")
def report_document(report_id: str, session: SessionDep) -> Response:
    response = pdf_response(report.document_of(session, report_id))
    response.status_code = 200
    return response
