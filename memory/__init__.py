"""The six MIRIX stores, the write path, the indexes and retrieval."""
