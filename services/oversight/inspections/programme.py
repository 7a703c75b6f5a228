"""The yearly inspection programme's sample of lower-level agencies (001 第十一条: 抽查不少于20%下一级经办机构), reproducible
from a recorded seed.

Algorithm ``hmac-sha256-rank-v1``, chosen so that anyone can re-derive the sample with nothing but SHA-256 and
without depending on a language's random-number generator:

1. size ``k = ceil(rate × n)`` for ``n`` lower-level agencies (exact decimal arithmetic; rate ≥ 0.20; at least 1
   when ``n ≥ 1``);
2. each agency's rank key is ``HMAC-SHA256(key = seed (UTF-8), message = agency code (UTF-8))`` in hex;
3. the ``k`` agencies with the smallest keys are the sample (the code breaks a tie, which does not happen in
   practice).

The order in which the agencies are listed does not matter, and the seed decides everything else: the same seed and
the same agency codes always give the same sample. A seed not given is drawn with ``secrets`` (128 bits) and recorded
with the programme before anything is selected.
"""

import hashlib
import hmac
import secrets
from decimal import ROUND_CEILING, Decimal

ALGORITHM = "hmac-sha256-rank-v1"
MIN_SAMPLE_RATE = Decimal("0.20")


def new_seed() -> str:
    return secrets.token_hex(16)


def sample_size(n: int, rate: Decimal = MIN_SAMPLE_RATE) -> int:
    if n <= 0:
        return 0
    return max(1, int((Decimal(n) * rate).to_integral_value(rounding=ROUND_CEILING)))


def rank_key(seed: str, code: str) -> str:
    return hmac.new(seed.encode(), code.encode(), hashlib.sha256).hexdigest()


def draw_sample(seed: str, codes: list[str], rate: Decimal = MIN_SAMPLE_RATE) -> list[str]:
    """The sampled codes, in rank order."""
    ranked = sorted(set(codes), key=lambda c: (rank_key(seed, c), c))
    return ranked[:sample_size(len(ranked), rate)]

