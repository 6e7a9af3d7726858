"""Ground under every domain: settings, database, errors, security. Imports no domain."""
