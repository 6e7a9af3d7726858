"""The attachment tests stand on the same people and places as the wish tests."""

from tests.wishes.conftest import world  # noqa: F401
