"""The kernel's strict edge types: integers, citizen ids, dates and text."""

from datetime import date

import pytest
from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from services.kernel.identifiers import CITIZEN_ID_CHECKS, validate_citizen_id
from services.kernel.periods import Period
from services.kernel.strict import INT64_MAX, FreeText, Int64, IsoDate, Name, RequestModel

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)


def code_of(adapter: TypeAdapter, value: object) -> str:
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(value)
    return info.value.errors()[0]["type"]


def test_int64_refuses_booleans_floats_and_overflow():
    ints = TypeAdapter(Int64)
    assert ints.validate_python("42") == 42 and ints.validate_python(INT64_MAX) == INT64_MAX
    assert code_of(ints, True) == "INVALID_INTEGER"
    assert code_of(ints, 1.0) == "INVALID_INTEGER"
    assert code_of(ints, "１２") == "INVALID_INTEGER"
    assert code_of(ints, "+12") == "INVALID_INTEGER"
    assert code_of(ints, INT64_MAX + 1) == "INTEGER_OUT_OF_RANGE"
    assert code_of(ints, "758882690469653037891715072") == "INTEGER_OUT_OF_RANGE"
    assert ints.json_schema()["maximum"] == INT64_MAX


def test_period_is_strict_and_bounded():
    periods = TypeAdapter(Period)
    assert periods.validate_python("202401") == 202401
    for bad in (True, 202401.0, "２０２４０１", 10**40, 202413):
        assert code_of(periods, bad) == "INVALID_PERIOD"
    assert periods.json_schema()["maximum"] == 220012


def test_iso_dates_only_within_the_window():
    dates = TypeAdapter(IsoDate)
    assert dates.validate_python("2026-12-05") == date(2026, 12, 5)
    for bad in (0, "0", "1700000000", "20261205", "2026-12-5", "２０２６-１２-０５"):
        assert code_of(dates, bad) == "INVALID_DATE"
    assert code_of(dates, "0001-01-01") == "DATE_OUT_OF_RANGE"
    assert code_of(dates, "9999-12-31") == "DATE_OUT_OF_RANGE"


@pytest.mark.parametrize("bad", ["a\x00b", "a\u202eb", "a\u200bb", "\ufeffab", "a\u2028b", "a\nb", "a\x7fb"])
def test_names_refuse_control_and_format_characters(bad):
    assert code_of(TypeAdapter(Name), bad) == "INVALID_CHARACTERS"


def test_text_is_nfc_and_trimmed_free_text_keeps_line_breaks():
    assert TypeAdapter(Name).validate_python("\u3000 Zoe\u0301 ") == "Zo\u00e9"
    assert TypeAdapter(FreeText).validate_python(" 第一行\n第二行\t ") == "第一行\n第二行"
    assert code_of(TypeAdapter(FreeText), "a\x00") == "INVALID_CHARACTERS"


class Body(RequestModel):
    name: str = Field(max_length=50)
    content: str = Field(default="", max_length=2000)
    count: int = 0
    day: date | None = None
    months: list[int] = []


def test_request_models_check_every_field_by_its_type():
    body = Body.model_validate({"name": " 王 ", "content": "a\nb", "count": "3", "day": "2026-01-02", "months": [1]})
    assert (body.name, body.content, body.count, body.day) == ("王", "a\nb", 3, date(2026, 1, 2))
    for bad, code in (({"name": "x", "count": True}, "INVALID_INTEGER"), ({"name": "x", "day": 0}, "INVALID_DATE"),
                      ({"name": "x\u202e"}, "INVALID_CHARACTERS"), ({"name": "x", "months": [2**64]},
                                                                    "INTEGER_OUT_OF_RANGE")):
        with pytest.raises(ValidationError) as info:
            Body.model_validate(bad)
        assert info.value.errors()[0]["type"] == code
    schema = Body.model_json_schema()["properties"]
    assert schema["count"]["maximum"] == 2**31 - 1 and schema["months"]["items"]["maximum"] == 2**31 - 1


@pytest.mark.parametrize(("value", "reason"), [
    ("15010219650315916", "CITIZEN_ID_LENGTH"),
    ("15010219650315A16X", "CITIZEN_ID_FORMAT"),
    ("15010219650230916X", "CITIZEN_ID_BIRTH_DATE"),
    ("15010218990315916X", "CITIZEN_ID_BIRTH_DATE"),
    ("150102196503159160", "CITIZEN_ID_CHECK_DIGIT"),
])
def test_each_citizen_id_check_has_its_own_reason_and_message(value, reason):
    with pytest.raises(PydanticCustomError) as info:
        validate_citizen_id(value)
    assert info.value.type == "INVALID_CITIZEN_ID"  # the code clients rely on
    assert info.value.context["reason"] == reason
    assert info.value.message() == CITIZEN_ID_CHECKS[reason]


def test_birth_place_codes_are_never_looked_up():
    assert validate_citizen_id("15010219650315916X") == "15010219650315916X"
    unknown_place = "999999196503159160"[:17]
    assert validate_citizen_id(unknown_place + _check(unknown_place))
    assert set(CITIZEN_ID_CHECKS) == {"CITIZEN_ID_LENGTH", "CITIZEN_ID_FORMAT", "CITIZEN_ID_BIRTH_DATE",
                                      "CITIZEN_ID_CHECK_DIGIT"}


def _check(body: str) -> str:
    from stdnum.cn import ric

    return ric.calc_check_digit(body + "0")


def test_secrets_are_never_rewritten():
    class Login(RequestModel):
        password: str
        new_password: str

    assert Login(password=" pässword ", new_password="x\u200b").new_password == "x\u200b"
    assert Login(password=" pässword ", new_password="x").password == " pässword "


def test_shown_escapes_what_cannot_be_printed_and_keeps_the_rest():
    from services.kernel.errors import shown

    assert shown("备注") == "备注"
    assert shown("备\x00注\u202e\n") == "备\\u0000注\\u202e\\u000a"
