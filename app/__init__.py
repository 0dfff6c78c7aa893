"""Memlane's composition root: settings, wiring of the concrete parts, pipelines and the CLI."""
