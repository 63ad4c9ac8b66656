"""The web console under ``/console``: server-rendered pages over the service layer
(see docs/console.md)."""
