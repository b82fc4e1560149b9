"""Identity: organisations, users and roles, sessions and tokens, MFA, and people's profiles (patients and
the care relationships that give clinicians access to them)."""
