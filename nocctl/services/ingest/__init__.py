"""Alert ingestion: reading (reader), input formats (formats), and the pipeline that
de-duplicates, correlates, suppresses and applies events (pipeline)."""
