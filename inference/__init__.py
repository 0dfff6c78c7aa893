"""On-device models: packaged model location, runtimes, prompts (arrives with the assistant)."""
