"""Where a page ends (``paging.page_end``): the page's gas limit, its estimate and the
queue's margin, fits what one transaction may carry, and it fills most of it.

A page sized on the bare estimate could be refused when sent: a call into other contracts
needs more gas than its run used (the 63/64 rule), which the margin covers. A 3,202-member
round on anvil under EIP-7825 hit exactly that (a page whose estimate fitted the cap and
whose need did not).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridledger.ledger.paging import FILL, page_end
from gridledger.ledger.txqueue import StepTooLarge, gas_limit, inverse_gas_limit

CAP = 16_777_216


@given(st.integers(0, 10**9))
def test_inverse_gas_limit_is_the_largest_estimate_within(limit: int) -> None:
    estimate = inverse_gas_limit(limit)
    assert gas_limit(estimate + 1) > limit
    assert estimate == 0 or gas_limit(estimate) <= limit


@given(
    base=st.integers(50_000, 2_000_000),
    per_item=st.integers(1_000, 60_000),
    items=st.integers(2, 5_000),
)
def test_a_page_fits_with_the_margin_and_fills_most_of_a_transaction(
    base: int, per_item: int, items: int
) -> None:
    def gas(k: int) -> int:
        estimate = base + per_item * k
        if estimate > CAP:
            raise StepTooLarge("out of gas at the cap")
        return estimate

    if gas_limit(base + per_item) > CAP:
        with pytest.raises(StepTooLarge, match="a page of one item"):
            page_end("step", gas, CAP, 0, items)
        return
    end = page_end("step", gas, CAP, 0, items)
    assert 1 <= end <= items
    if end < items:
        assert gas_limit(gas(end)) <= CAP
        # linear costs: the page reaches the fill target, less one item
        assert gas(end + 1) > inverse_gas_limit(int(FILL * CAP)) or end == items - 1
