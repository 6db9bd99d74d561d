"""XML streams: incremental parsing (sans-IO) and serialisation."""
