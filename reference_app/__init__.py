"""The reference chat service, in two designs behind one HTTP API (see docs/internals.md)."""
