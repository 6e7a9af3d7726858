"""Micro-wishes (微心愿): posted by residents, reviewed by staff, claimed by deputies."""
