"""Leaderboards: collecting records and rendering tables."""
