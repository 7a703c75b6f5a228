"""The draw of the internal control's samples and the yearly report's due day, without a service: the same seed over
the same acts draws the same acts in the same order; high-risk acts are drawn more often by their weight (004 第6项:
高风险业务重点核查); the report is due on the last working day of December (001 第二十四条), unknown for a year the
calendar does not hold."""

from datetime import date, datetime, timezone

import pytest

from services.accounts.internal_control import risk, sampling
from services.accounts.internal_control.sampling import Unit, sample_size, weighted_draw
from services.kernel.errors import Invalid
from services.oversight.internal_control.deadline import LATE, MISSING, SUBMITTED, UNKNOWN, due_of, status_of


def units(ordinary: int, injury: int) -> list[Unit]:
    return [Unit(f"i{n}", "d", "person", f"p{n}", "150102", "benefits",
                 "claim_decision" if n < injury else "payroll_line", f"act-{n:04d}", "t", "reviewer.wu",
                 "injury" if n < injury else risk.ORDINARY) for n in range(ordinary + injury)]


def test_the_same_seed_draws_the_same_acts_and_another_seed_others():
    population = units(90, 10)
    weights = risk.current_weights()
    first = weighted_draw(population, seed=7, size=10, weights=weights)
    again = weighted_draw(list(population), seed=7, size=10, weights=weights)
    other = weighted_draw(population, seed=8, size=10, weights=weights)
    assert [u.item_id for u, _ in first.drawn] == [u.item_id for u, _ in again.drawn]
    assert first.population_sha256 == again.population_sha256 and first.population == 100
    assert [u.item_id for u, _ in first.drawn] != [u.item_id for u, _ in other.drawn]
    assert len({u.item_id for u, _ in first.drawn}) == 10  # without replacement
    changed = weighted_draw(population[:-1], seed=7, size=10, weights=weights)
    assert changed.population_sha256 != first.population_sha256


def test_high_risk_acts_are_drawn_by_their_weight():
    population = units(90, 10)
    weights = risk.current_weights()
    draws = [weighted_draw(population, seed=seed, size=10, weights=weights) for seed in range(300)]
    injury = sum(1 for d in draws for u, _ in d.drawn if u.risk == "injury") / len(draws)
    flat = [weighted_draw(population, seed=seed, size=10, weights={}) for seed in range(300)]
    injury_flat = sum(1 for d in flat for u, _ in d.drawn if u.risk == "injury") / len(flat)
    # 10 of 100 acts: about 1 in an unweighted sample of 10; weighted 4 to 1, about 3.
    assert 0.6 < injury_flat < 1.4 and injury > 2.4


def test_sample_size_is_the_rate_rounded_up():
    assert (sample_size(0, 5), sample_size(1, 5), sample_size(40, 25), sample_size(41, 25), sample_size(3, 100)) == (
        0, 1, 10, 11, 3)


def test_risk_categories_read_from_the_archive_item():
    assert risk.classify("enrolment", "e1/transfer_out", "{}") == "transfer"
    assert risk.classify("enrolment", "e1/open", "{}") == risk.ORDINARY
    assert risk.classify("claim_decision", "c/approval", '{"claim_kind":"one_off"}') == "back_payment"
    assert risk.classify("claim_decision", "c/approval", '{"claim_kind":"basic_pension","early_retirement":"true"}') \
        == "early_retirement"
    assert risk.classify("payroll_line", "l", '{"amount_fen":"5000000"}') == "large_payment"
    assert risk.classify("payroll_line", "l", '{"amount_fen":"4999999"}') == risk.ORDINARY
    assert risk.classify("correction", "x", "{}") == "correction"


@pytest.mark.parametrize("label", ["2026-00", "2026-13", "26-01", "2026-Q1"])
def test_a_malformed_month_is_refused(label):
    with pytest.raises(Invalid) as refused:
        sampling.period_of(sampling.MONTHLY, label)
    assert refused.value.code == "INVALID_CONTROL_PERIOD"


def test_a_quarter_spans_its_three_months():
    period = sampling.period_of(sampling.QUARTERLY, "2025-Q4")
    assert (period.first_day, period.last_day, period.year) == (date(2025, 10, 1), date(2025, 12, 31), 2025)
    assert sampling.period_of(sampling.MONTHLY, "2024-02").last_day == date(2024, 2, 29)


def test_the_yearly_report_is_due_on_the_last_working_day_of_december():
    assert due_of(2026).day == date(2026, 12, 31)  # a Thursday
    assert due_of(2023).day == date(2023, 12, 29)  # the 31st a Sunday, the 30th a Saturday
    unknown = due_of(2099)
    assert unknown.day is None and "2099" in unknown.note
    due = due_of(2025)
    on_time = datetime(2025, 12, 31, 15, 59, tzinfo=timezone.utc)  # 23:59 China time
    assert status_of(due, on_time, date(2026, 1, 5)) == (SUBMITTED, False)
    assert status_of(due, datetime(2025, 12, 31, 16, 1, tzinfo=timezone.utc), date(2026, 1, 5)) == (LATE, False)
    assert status_of(due, None, date(2025, 12, 31)) == (MISSING, False)
    assert status_of(due, None, date(2026, 1, 1)) == (MISSING, True)
    assert status_of(unknown, None, date(2100, 1, 1)) == (UNKNOWN, False)
