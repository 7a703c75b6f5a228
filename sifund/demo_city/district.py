"""The synthetic district of ``sifund demo city``: its employers, persons, wages, months and calendar, drawn from one
seed so that two runs with the same seed describe the same district (and the second changes nothing).

Every identifier is valid and synthetic: citizen ids of the 新城区 (150102) with their check digit (GB 11643), USCCs
with theirs (GB 32100), bank cards with the Luhn digit. Names are drawn from common surnames and given-name
characters; the serial ranges are far from the ones the tests and benchmarks use."""

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from stdnum import luhn
from stdnum.cn import ric, uscc as uscc_code

from services.kernel import clock

CITY = "150100"  # 呼和浩特市: the pooling region of the parameters
DISTRICT = "150102"  # 新城区
CONTRIBUTION_FUNDS = ("PEN_EMP", "UNEMP", "INJURY")
MONTHS = 3  # contribution months driven, the last one two months before today
USCC_SERIAL_FROM = 610_000_000
CARD_PREFIX = "622848"  # a debit-card BIN (农业银行借记卡)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建国红文斌宇浩凯丹婷雪梅琳晨阳帆雅慧"
TRADE = ("乳业", "机械", "建材", "物流", "餐饮", "商贸", "电子", "印务", "医药", "纺织", "食品", "能源", "建筑", "物业")
WORD = ("青城", "大召", "敕勒", "昭君", "草原", "金桥", "如意", "塞上", "北垣", "阴山", "祥泰", "恒源", "瑞丰", "同和")


def add_months(period: int, months: int) -> int:
    index = period // 100 * 12 + period % 100 - 1 + months
    return index // 12 * 100 + index % 12 + 1


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def fen(amount: str) -> int:
    return int(Decimal(amount) * 100)


def uscc(serial: int) -> str:
    body = f"91{DISTRICT}{USCC_SERIAL_FROM + serial:09d}"
    return body + uscc_code.calc_check_digit(body)


def bank_card(serial: int) -> str:
    body = f"{CARD_PREFIX}{serial:012d}"
    return body + luhn.calc_check_digit(body)


@dataclass(frozen=True)
class Calendar:
    """The months driven: ``MONTHS`` contribution months ending two months before today (China); each is paid to
    the tax bureau on the 12th of the next month, remitted to the treasury on the 16th and received in the special
    account on the 20th (within 10 working days, 000 二(二)) — all in the past. Benefits are paid for last month."""

    today: date

    @classmethod
    def of_today(cls) -> "Calendar":
        return cls(clock.china_today())

    @property
    def current(self) -> int:
        return self.today.year * 100 + self.today.month

    @property
    def periods(self) -> list[int]:
        return [add_months(self.current, -2 - k) for k in reversed(range(MONTHS))]

    @property
    def benefit_period(self) -> int:
        return add_months(self.current, -1)

    @property
    def enrolled_from(self) -> int:
        return self.periods[0]

    def day_after(self, period: int, day: int) -> str:
        month = add_months(period, 1)
        return date(month // 100, month % 100, day).isoformat()

    def paid_on(self, period: int) -> str:
        return self.day_after(period, 12)

    def remitted_on(self, period: int) -> str:
        return self.day_after(period, 16)

    def received_on(self, period: int) -> str:
        return self.day_after(period, 20)


@dataclass
class Person:
    serial: int
    citizen_id: str
    name: str
    base_fen: int  # declared monthly contribution base
    id: str | None = None  # the registry's person id, once known


@dataclass
class Employer:
    serial: int
    uscc: str
    name: str
    staff: list[Person]
    id: str | None = None


@dataclass
class District:
    seed: int
    employers: list[Employer] = field(default_factory=list)

    @property
    def persons(self) -> list[Person]:
        return [p for e in self.employers for p in e.staff]

    def employer_of(self, person: Person) -> Employer:
        return next(e for e in self.employers if person in e.staff)


def _citizen_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        birth = date(1966, 1, 1) + timedelta(days=rng.randrange(0, 34 * 365))  # aged about 26 to 60
        body = f"{DISTRICT}{birth:%Y%m%d}{rng.randrange(0, 1000):03d}"
        code = body + ric.calc_check_digit(body + "0")
        if code not in taken:
            taken.add(code)
            return code


def build_district(persons: int, seed: int) -> District:
    """``persons`` insured persons with employers of 10 to about 120 staff (about one employer per 60 persons, at
    least 4), bases drawn between 5 500 and 24 000 yuan: inside the floor and the cap of an average wage of 8 500
    (60 % to 300 %), so that the one employer declaring below the floor (``anomalies.py``) stands out."""
    rng = random.Random(seed)
    district, taken = District(seed), set()
    count = max(4, persons // 60)
    sizes = [rng.randint(10, 110) for _ in range(count)]
    scale = persons / sum(sizes)
    sizes = [max(1, round(s * scale)) for s in sizes]
    sizes[-1] += persons - sum(sizes)
    serial = 0
    for number, size in enumerate(sizes, start=1):
        staff = []
        for _ in range(max(1, size)):
            serial += 1
            name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
            staff.append(Person(serial, _citizen_id(rng, taken), name, rng.randrange(550_000, 2_400_000, 100)))
        name = f"呼和浩特市{rng.choice(WORD)}{rng.choice(TRADE)}有限责任公司{number}"
        district.employers.append(Employer(number, uscc(number), name, staff))
    return district
