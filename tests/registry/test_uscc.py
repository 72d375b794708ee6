import pytest

from registry import uscc


@pytest.mark.parametrize(
    "code",
    [
        "914403001922038216",  # published codes of well-known companies
        "9144030071526726XG",
        "91330100716105852F",
        " 9144030071526726xg ",  # case and spaces are normalised
    ],
)
def test_normalize_accepts_published_codes(code):
    assert uscc.normalize(code) == code.strip().upper()


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91440300192203821", "length"),
        ("9144030019220382161", "length"),
        ("91440300192203821I", "character"),  # I is not in the alphabet
        ("914403001922038217", "check"),
        ("9144030071526726XA", "check"),
    ],
)
def test_normalize_rejects_bad_codes_with_a_reason(code, reason):
    with pytest.raises(uscc.InvalidCode) as raised:
        uscc.normalize(code)
    assert raised.value.reason == reason


def test_check_character_completes_every_prefix_to_a_valid_code():
    for n in range(200):
        body = f"N2520521MF{n:07d}"
        assert uscc.normalize(body + uscc.check_character(body))
