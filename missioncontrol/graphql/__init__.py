"""GraphQL at /graphql: each app's Query composed into one schema (see schema.py)."""
