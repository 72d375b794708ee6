"""Writes for the estimation app, one module per concern; import from the
module that owns the function:

- ``datasets``: upload and describe land-cover maps;
- ``runs``: create and execute runs, store their results, methodology versions;
- ``verification``: submit, approve, reject;
- ``issuance``: issue an approved verification through ``trading``.

Guarantees for all of them: a refused input changes nothing (one transaction
per call, errors as translated ``ValidationError`` or ``PermissionDenied``).
"""
