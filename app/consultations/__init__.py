"""Legislative consultations (立法意见征集)."""
