"""Presence: duty rosters (排班), check-ins (进站签到) and receptions (接待记录)."""
