"""One composition root per function: each module builds only the use cases its function runs,
with the adapters they need, once per cold start (functions/<name>/app.py imports its own)."""
