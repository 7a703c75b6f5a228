from datetime import datetime

from pydantic import BaseModel, Field

from services.kernel.identifiers import USCC, RegionCode


class EmployerRegistration(BaseModel):
    uscc: USCC = Field(description="统一社会信用代码 (18 characters, check character verified)")
    name: str = Field(min_length=1, max_length=200, description="单位名称")
    region: RegionCode = Field(description="参保地行政区划代码 (the district agency that manages the employer)")


class EmployerOut(BaseModel):
    id: str
    uscc: str
    name: str
    region: str
    status: str
    registered_at: datetime


class EmployerPage(BaseModel):
    items: list[EmployerOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")
