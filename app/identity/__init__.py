"""Identity: accounts, logins, roles, the deputy roster and binding."""
