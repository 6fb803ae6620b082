"""The analytical warehouse (DuckDB): fed by projections, read by the funnel API, the diagnosis and the deciders."""
