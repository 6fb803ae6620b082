"""Projection framework, built-in read models and relays."""
