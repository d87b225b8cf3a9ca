from __future__ import annotations

from collections.abc import Iterator

import pytest

from handler.deliver import versioning


@pytest.fixture(autouse=True)
def fresh_versioning() -> Iterator[None]:
    """Each test is a new instance as far as the buckets' versioning goes."""
    versioning.forget()
    yield
    versioning.forget()
