"""Sources that turn what the user sees and says into Events: importers now, screen later."""
