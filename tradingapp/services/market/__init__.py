"""Market data: tick ingest, candles, backfill and retention."""
