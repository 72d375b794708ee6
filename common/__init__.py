"""The shared kernel: small helpers every app may use. It imports no app and
no Django model (tests/test_layering.py keeps it so)."""
