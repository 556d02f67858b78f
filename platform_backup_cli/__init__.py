"""The operator CLI, `platform-backup`."""
