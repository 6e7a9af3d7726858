"""Types shared by every domain's inputs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Integer primary keys are 32-bit on PostgreSQL: a larger id can name nothing, so inputs
# refuse it with a 422 instead of letting the database fail on it.
MAX_ID = 2_147_483_647

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""Every id the API accepts, in a path, a query or a body: 1..MAX_ID, else 422.

In a path or query, wrap it: `Annotated[Id, Path()]`, `Annotated[Id | None, Query()] = None`
(the bounds come with the type; `Path`/`Query` carry only the description)."""

Version = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A row's version as the caller read it (optimistic locking); a 32-bit column like ids."""
