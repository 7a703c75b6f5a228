"""Drawing a sample of past business from the archive (稽核内控抽查).

The population is every completed act of the period (China time) filed in the dossiers of the auditor's area —
an act filed into two dossiers (a person's and an employer's) counts once — except the acts that are not the
agency's to check (``risk.NOT_SAMPLED``). Monthly over a month (004 第6项: 每月对上月业务随机抽取一定比例进行核查),
quarterly over a quarter (001 第十九条: 每季度对上季度业务随机抽取一定比例进行核查); only a period that has ended.

The draw is weighted sampling without replacement (Efraimidis–Spirakis: each act gets the key ``u ** (1 / w)``
with ``u`` from a generator seeded by the recorded seed, in a fixed order of the acts, and the ``size`` highest
keys are drawn), so the same seed over the same population draws the same acts in the same order. The
population's SHA-256 is kept with the sample: a redraw says whether the population is still the same (an act
filed late, a destroyed item) and whether the draw still is.
"""

import hashlib
import heapq
import math
import random
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlmodel import Session

from services.accounts.archives.models import Dossier, DossierItem
from services.accounts.internal_control import risk
from services.kernel.auth import area_filter
from services.kernel.clock import CHINA, china_today
from services.kernel.errors import Invalid

MONTHLY, QUARTERLY = "monthly", "quarterly"
PERIOD_FORMS = {MONTHLY: re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"), QUARTERLY: re.compile(r"^(\d{4})-Q([1-4])$")}
MAX_SEED = 2 ** 63 - 1
BATCH = 5000


@dataclass(frozen=True)
class Period:
    kind: str
    label: str
    year: int
    first_day: date
    last_day: date


def period_of(kind: str, label: str) -> Period:
    """``2026-11`` (monthly) or ``2026-Q3`` (quarterly), ended before today (China)."""
    found = PERIOD_FORMS[kind].match(label.strip())
    if found is None:
        form = "YYYY-MM，如 2026-11" if kind == MONTHLY else "YYYY-Qn，如 2026-Q3"
        raise Invalid("INVALID_CONTROL_PERIOD", f"抽查期间格式应为 {form}")
    year, part = int(found.group(1)), int(found.group(2))
    first_month = part if kind == MONTHLY else 3 * part - 2
    last_month = part if kind == MONTHLY else 3 * part
    first = date(year, first_month, 1)
    last = (date(year + last_month // 12, last_month % 12 + 1, 1)) - timedelta(days=1)
    if last >= china_today():
        raise Invalid("CONTROL_PERIOD_NOT_ENDED", f"{label.strip()} 尚未结束：只抽查已结束期间的业务")
    return Period(kind, label.strip(), year, first, last)


def new_seed() -> int:
    return secrets.randbelow(MAX_SEED)


@dataclass(frozen=True)
class Unit:
    """One act of the population: the archive item that stands for it, and its risk category."""

    item_id: str
    dossier_id: str
    subject_type: str
    subject_id: str
    region: str | None
    source: str
    item_type: str
    act_id: str
    title: str
    decided_by: str
    risk: str

    def line(self) -> str:
        return f"{self.source}|{self.item_type}|{self.act_id}|{self.item_id}|{self.risk}"


def population(session: Session, period: Period, region: str) -> Iterator[Unit]:
    """The period's acts in the area, in a fixed order (source, type, act, item id), each act once."""
    start = datetime.combine(period.first_day, time(), CHINA)
    end = datetime.combine(period.last_day + timedelta(days=1), time(), CHINA)
    query = (select(DossierItem.id, DossierItem.dossier_id, Dossier.subject_type, Dossier.subject_id, Dossier.region,
                    DossierItem.source, DossierItem.item_type, DossierItem.act_id, DossierItem.title,
                    DossierItem.decided_by, DossierItem.references)
             .join(Dossier, Dossier.id == DossierItem.dossier_id)
             .where(DossierItem.occurred_at >= start, DossierItem.occurred_at < end,
                    DossierItem.item_type.not_in(risk.NOT_SAMPLED),
                    area_filter(Dossier.region, region))
             .order_by(DossierItem.source, DossierItem.item_type, DossierItem.act_id, DossierItem.id)
             .execution_options(yield_per=BATCH))
    last_act = None
    for row in session.execute(query):
        act = (row.source, row.item_type, row.act_id)
        if act == last_act:
            continue
        last_act = act
        yield Unit(row.id, row.dossier_id, row.subject_type, row.subject_id, row.region, row.source, row.item_type,
                   row.act_id, row.title, row.decided_by, risk.classify(row.item_type, row.act_id, row.references))


@dataclass(frozen=True)
class Draw:
    population: int
    population_sha256: str
    drawn: list[tuple[Unit, int]]  # (unit, weight), highest key first


def sample_size(population: int, rate_percent: int) -> int:
    """一定比例: the rate of the population, rounded up (at least one act of a non-empty period)."""
    return min(population, math.ceil(population * rate_percent / 100))


def weighted_draw(units: Iterable[Unit], *, seed: int, size: int, weights: dict[str, int]) -> Draw:
    """The ``size`` units of highest key ``u ** (1 / weight)``, ``u`` drawn in the units' order from a generator
    seeded by ``seed``; kept in a heap of ``size``: memory follows the sample, not the population."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    keyed: list[tuple[float, int, Unit]] = []
    count = 0
    for position, unit in enumerate(units):
        count += 1
        digest.update(unit.line().encode() + b"\n")
        key = rng.random() ** (1 / weights.get(unit.risk, risk.ORDINARY_WEIGHT))
        entry = (key, -position, unit)  # ties (never in practice) go to the earlier unit, never to comparing units
        if len(keyed) < size:
            heapq.heappush(keyed, entry)
        elif size and entry > keyed[0]:
            heapq.heapreplace(keyed, entry)
    drawn = [(unit, weights.get(unit.risk, risk.ORDINARY_WEIGHT)) for _, _, unit in sorted(keyed, reverse=True)]
    return Draw(count, digest.hexdigest(), drawn)


def draw(session: Session, period: Period, region: str, *, seed: int, rate_percent: int,
         weights: dict[str, int]) -> Draw:
    """Two passes over the population: the first counts it (its size sets the sample's), the second draws."""
    count = sum(1 for _ in population(session, period, region))
    return weighted_draw(population(session, period, region), seed=seed, size=sample_size(count, rate_percent),
                         weights=weights)
