"""Bulk writes: the values handed to the driver are those SQLAlchemy binds, each date or timestamp bound once."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlmodel import Session

from services.collection.models import LateFeeCharge
from services.collection.payments import bulk
from services.kernel.db import make_engine


@pytest.mark.unit
def test_rows_are_bound_as_their_column_types_bind_them(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/bulk.db")
    table = LateFeeCharge.__table__
    instant = datetime(2026, 2, 10, 8, 0, tzinfo=UTC)
    same_instant_elsewhere = instant.astimezone(timezone(timedelta(hours=8)))  # equal, another object
    values = [instant, instant, same_instant_elsewhere, instant + timedelta(microseconds=1), None, instant]
    rows = [(f"l-{i}", v) for i, v in enumerate(values)]
    with Session(engine) as session:
        dialect = session.get_bind().dialect
        process = table.c.computed_at.type.dialect_impl(dialect).bind_processor(dialect)
        got = bulk._bound(session, table, ("assessment_line_id", "computed_at"), rows)
    assert got == [(f"l-{i}", process(v) if v is not None else None) for i, v in enumerate(values)]
    assert date(2026, 2, 10).isoformat() in got[0][1]
    engine.dispose()
