"""Held-out validation data, generated independently of the project's own wire model."""
