"""What a citizen id says about its holder: birth date and sex (GB 11643), checked against what is declared."""

from datetime import date

from stdnum.cn import ric

from services.kernel import clock
from services.kernel.errors import Invalid


def sex_from_citizen_id(citizen_id: str) -> str:
    """The 17th digit (sequence code) is odd for men, even for women."""
    return "M" if int(citizen_id[16]) % 2 else "F"


def birth_date_from_citizen_id(citizen_id: str) -> date:
    return ric.get_birth_date(citizen_id)


def derive_and_check(citizen_id: str, *, declared_sex: str | None = None,
                     declared_birth_date: date | None = None, today: date | None = None) -> tuple[str, date]:
    """Returns (sex, birth date) from the id; refuses a declaration that contradicts it or a birth in the future."""
    sex, birth = sex_from_citizen_id(citizen_id), birth_date_from_citizen_id(citizen_id)
    if birth > (today or clock.china_today()):
        raise Invalid("INVALID_CITIZEN_ID", "公民身份号码中的出生日期晚于今天")
    if declared_sex is not None and declared_sex != sex:
        raise Invalid("SEX_MISMATCH", f"申报性别与公民身份号码不符（号码显示为{'男' if sex == 'M' else '女'}）")
    if declared_birth_date is not None and declared_birth_date != birth:
        raise Invalid("BIRTH_DATE_MISMATCH", f"申报出生日期与公民身份号码不符（号码显示为{birth.isoformat()}）")
    return sex, birth
