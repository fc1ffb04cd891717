"""indexer layer."""
