from __future__ import annotations

import pytest

from tests.dashboard.helpers import Rows
from tests.factories import Factory


@pytest.fixture
def rows(factory: Factory) -> Rows:
    return Rows(factory)
