"""Built-in read models, one projection per module."""
