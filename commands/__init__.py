"""The write side's entry points: command models, their handlers, and the bus that runs them."""
