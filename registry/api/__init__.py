"""The REST API's shared parts (a small app of its own: it keeps the
idempotency records) and the registry's endpoints: sign-in tokens,
organizations, projects."""
