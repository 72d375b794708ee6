"""Unified social credit code (统一社会信用代码, GB 32100-2015): pure arithmetic.

18 characters from a 31-symbol alphabet (digits and capitals without I, O, Z, S, V).
The last one is a check character: with weights 3^i mod 31 over the first 17,
check = (31 - sum mod 31) mod 31.
"""

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18


class InvalidCode(ValueError):
    """The code is malformed; ``reason`` is one of "length", "character", "check"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_character(first_17: str) -> str:
    """The check character that completes 17 valid characters."""
    total = sum(ALPHABET.index(c) * w for c, w in zip(first_17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalize(code: str) -> str:
    """Upper-case and strip; raise InvalidCode unless it is a valid code."""
    code = code.strip().upper()
    if len(code) != LENGTH:
        raise InvalidCode("length")
    if any(c not in ALPHABET for c in code):
        raise InvalidCode("character")
    if check_character(code[:17]) != code[17]:
        raise InvalidCode("check")
    return code
