"""Deputy groups (代表小组)."""
