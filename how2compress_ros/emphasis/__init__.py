"""Emphasis-Assignment model and its training by Region-aware Emphasis Routing."""
