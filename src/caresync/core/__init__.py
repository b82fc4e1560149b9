"""Platform services every domain uses: auth, permissions, audit, crypto, storage, notifications, jobs,
realtime, errors and pagination. No domain logic lives here."""
