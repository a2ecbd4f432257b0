"""Reusable test helpers (real servers scripted by tests)."""
