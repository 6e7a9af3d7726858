"""Open311 GeoReport v2 (and its servicerequestupdates extension), at /open311/v2."""
