"""Placeholder: implemented in its own change."""

__all__: list[str] = []
