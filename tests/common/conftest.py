"""The trading fixtures (accounts with credits, a seller and a buyer), for
the test that the web form and the API read a price alike."""

from tests.trading.conftest import (  # noqa: F401 (fixtures)
    buyer_account,
    buyer_org,
    issue,
    project,
    seller,
    seller_account,
    seller_org,
)
