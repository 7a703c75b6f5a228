"""Audit-chain verification (OVERSIGHT.md): the last head oversight verified for each component, and every check."""

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field

from services.oversight.models import OversightTable


class ChainCheckpoint(OversightTable, table=True):
    """The last verified head of one component's chain: a later head with a lower seq, or a different hash at this
    seq, means the chain was rewound or rewritten."""

    __tablename__ = "chain_checkpoint"

    component: str = Field(primary_key=True, max_length=20)  # accounts | collection | benefits | gateway
    seq: int = 0
    hash: str = Field(max_length=64)
    verified_at: datetime | None = None
    last_checked_at: datetime | None = None
    last_status: str | None = Field(default=None, max_length=20)  # ok | broken | rewound | unreachable | error
    last_problem: str | None = Field(default=None, sa_column=Column(Text))
    last_case_id: str | None = Field(default=None, max_length=36)
    checks: int = 0


class ChainCheck(OversightTable, table=True):
    __tablename__ = "chain_check"

    id: int | None = Field(default=None, primary_key=True)
    component: str = Field(max_length=20, index=True)
    checked_at: datetime
    trigger: str = Field(max_length=20)  # on_demand | schedule
    credential: str = Field(max_length=20)  # service (system:oversight) | caller (the officer's token)
    checked_by: str = Field(max_length=100)
    status: str = Field(max_length=20)
    length: int | None = None  # entries verified
    head_seq: int | None = None
    head_hash: str | None = Field(default=None, max_length=64)
    first_bad_seq: int | None = None
    baseline_seq: int | None = None  # the checkpoint compared against
    baseline_hash: str | None = Field(default=None, max_length=64)
    problem: str | None = Field(default=None, sa_column=Column(Text))
    case_id: str | None = Field(default=None, max_length=36)
