"""Care-team coordination: SOAP notes, tasks between team members, and secure messaging between the
patient and the team (live over the WebSocket)."""
