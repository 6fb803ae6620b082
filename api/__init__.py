"""The edges: HTTP API, CLI entry point, dashboard pages."""
