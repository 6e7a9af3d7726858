"""Reuses the activity tests' district (street A's group, staff, residents)."""

from tests.activities.conftest import World, world  # noqa: F401

__all__ = ["World"]
