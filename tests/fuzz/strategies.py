"""Hypothesis strategies for the platform's identifiers, all *valid* (check digits computed with python-stdnum, the
library services/kernel/identifiers.py validates with), so that generated requests get past validation and reach
the write paths behind it. Invalid values are the job of schemathesis' negative mode and of the unit tests."""

from datetime import date

from hypothesis import strategies as st
from stdnum import luhn
from stdnum.cn import ric, uscc

# Birth-place codes: Hohhot's urban districts (新城区, 回民区, 赛罕区; the README's region is 150102) and Beijing's
# 东城区 (out of the test tokens' region 150100). A birth-place code is historical, so the
# platform must accept the Hohhot ones even where python-stdnum's table lacks them.
BIRTH_PLACES = ("150102", "150103", "150105", "110101")
# Regions a request may name: the districts, the city of the test tokens, and one outside it.
REGIONS = ("150102", "150103", "150105", "150100", "110101")
FIRST_PERIOD_YEAR, LAST_PERIOD_YEAR = 2019, 2027


@st.composite
def citizen_ids(draw) -> str:
    """公民身份号码 (GB 11643): birth place, birth date, sequence, ISO 7064 MOD 11-2 check character."""
    place = draw(st.sampled_from(BIRTH_PLACES))
    born = draw(st.dates(min_value=date(1940, 1, 1), max_value=date(2008, 12, 31)))
    sequence = draw(st.integers(0, 999))
    body = f"{place}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum's takes the whole number and ignores its last character


# GB 32100: registration authority (9 = 工商), organisation type (1 = 企业, 2 = 个体工商户), region, 9-character
# organisation code, check character.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@st.composite
def usccs(draw) -> str:
    """统一社会信用代码 with a valid check character (what python-stdnum checks)."""
    head = draw(st.sampled_from(("91", "92", "12", "52")))
    region = draw(st.sampled_from(REGIONS))
    organisation = draw(st.text(alphabet=_USCC_ALPHABET, min_size=9, max_size=9))
    body = f"{head}{region}{organisation}"
    return body + uscc.calc_check_digit(body)


@st.composite
def bank_cards(draw) -> str:
    """A UnionPay card number (62…, 16 or 19 digits) with its Luhn check digit."""
    length = draw(st.sampled_from((16, 19)))
    body = "62" + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=length - 3, max_size=length - 3)))
    return body + luhn.calc_check_digit(body)


def periods() -> st.SearchStrategy[int]:
    """费款所属期 YYYYMM, a few years around the test clock's present."""
    return st.builds(lambda year, month: year * 100 + month,
                     st.integers(FIRST_PERIOD_YEAR, LAST_PERIOD_YEAR), st.integers(1, 12))


def regions() -> st.SearchStrategy[str]:
    return st.sampled_from(REGIONS)


# Amounts a tester types to break things: each must get a clear 422, never a 500.
EXTREME_AMOUNTS = ("1E+400", "100000000000000000000.00", "92233720368547758.07", "9223372036854775807", "-0.01",
                   "0.001", "NaN", "Infinity", "１２３.00", "+5.00", " 5.00 ")


def yuan_amounts() -> st.SearchStrategy[str]:
    """Amounts as the API takes them: decimal strings with at most two places, from 0 to a large monthly sum; one
    in five an extreme or malformed one."""
    fen = st.one_of(st.integers(0, 10_000_00), st.integers(0, 100_000_000_00))
    valid = fen.map(lambda f: f"{f // 100}.{f % 100:02d}")
    return st.one_of(valid, valid, valid, valid, st.sampled_from(EXTREME_AMOUNTS))


def plausible_dates() -> st.SearchStrategy[str]:
    """Mostly dates the platform works with, sometimes any date (far past and future must be refused cleanly)."""
    near = st.dates(min_value=date(FIRST_PERIOD_YEAR, 1, 1), max_value=date(LAST_PERIOD_YEAR, 12, 31))
    return st.one_of(near, near, near, st.dates()).map(date.isoformat)
