"""Read bodies of benefits' registry mirror (what benefits knows from the ACCOUNTS, EXCHANGE and COLLECTION events)."""

from datetime import date

from pydantic import BaseModel, Field

from services.kernel.money import Yuan
from services.kernel.pii import BankAccountOut, CitizenIdOut


class BeneficiaryAccountOut(BaseModel):
    bank_account_id: str
    kind: str
    bank_name: str
    account_no: BankAccountOut
    holder_name: str
    status: str
    payable: bool = Field(description="active and in the person's own name: benefits may pay into it (000 二(三))")


class BeneficiaryPersonOut(BaseModel):
    person_id: str
    citizen_id: CitizenIdOut
    name: str
    sex: str
    birth_date: date
    region: str
    life_status: str
    death_date: date | None
    imprisoned_from: date | None
    imprisoned_until: date | None
    accounts: list[BeneficiaryAccountOut]
    source_event_id: str = Field(description="the event that last wrote this person")


class ContributionMonth(BaseModel):
    period: int
    base: Yuan
    average_wage: Yuan
    index: str = Field(description="base ÷ average wage, 6 decimal places (rounded half-up for display)")
    assessment_line_id: str


class ContributionIndexOut(BaseModel):
    person_id: str
    fund: str
    months: int
    index_sum: str = Field(description="Σ monthly index, 6 decimal places (computed exactly, rounded for display)")
    average_index: str = Field(description="index_sum ÷ months, 6 decimal places")
    items: list[ContributionMonth]
