"""Query models and services over read models (the read side)."""
