"""Integrators: other systems (the 12345 hotline, a city's data platform, a street's grid
system) calling the API with keys, and the signed webhooks pushed to them."""
