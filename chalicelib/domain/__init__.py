"""The domain: pydantic models and pure functions. No I/O (checked by import-linter)."""
