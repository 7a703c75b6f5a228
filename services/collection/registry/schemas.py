"""Read bodies of collection's registry mirror (what collection knows from the ACCOUNTS events)."""

from pydantic import BaseModel, Field

from services.kernel.pii import CitizenIdOut


class RegistryEmployerOut(BaseModel):
    employer_id: str
    uscc: str
    name: str
    region: str
    unit_type: str
    industry_risk_class: int
    status: str
    source_event_id: str = Field(description="the ACCOUNTS event that last wrote this row")


class RegistryEnrolmentOut(BaseModel):
    enrolment_id: str
    person_id: str
    citizen_id: CitizenIdOut | None
    name: str | None
    life_status: str | None
    fund: str
    employer_id: str | None
    start_period: int
    end_period: int | None
    status: str


class RegistryEnrolmentPage(BaseModel):
    items: list[RegistryEnrolmentOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")
