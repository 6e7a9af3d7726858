"""Organisation: regions (a tree), stations (家站点) and responsible units (承办单位)."""
