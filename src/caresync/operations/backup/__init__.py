"""Backups: one consistent, encrypted, compressed archive of the database and every stored file, its
verification, restore into an empty target, and scheduled backups with retention."""
