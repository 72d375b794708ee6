"""The REST plumbing every app's ``api/`` package uses: the base view set,
idempotency records, the error format and its exception handler (the HTTP
status comes from the exception's class), the OpenAPI schema class, parsers,
pagination and throttles. It imports no app (tests/test_layering.py)."""
