"""search_api layer."""
