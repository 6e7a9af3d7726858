"""Bounds shared by every domain's inputs."""

from __future__ import annotations

# Integer primary keys are 32-bit on PostgreSQL: a larger id can name nothing, so inputs
# refuse it with a 422 instead of letting the database fail on it.
MAX_ID = 2_147_483_647
