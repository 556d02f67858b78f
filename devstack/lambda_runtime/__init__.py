"""What runs inside a local Lambda worker process (bootstrap.py, standard library only)."""
