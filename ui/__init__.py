"""The three faces (dashboard, desktop GUI, terminal chat), thin clients of the core."""
