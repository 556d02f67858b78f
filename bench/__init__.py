"""``make bench``: the backup pipeline against what a user would run instead."""
