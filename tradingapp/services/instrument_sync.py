"""Moved to tradingapp/brokers/xts/instrument_sync.py (issue 12). This alias goes once
brokers/xts/upkeep.py imports scheduled_sync from there."""

from tradingapp.brokers.xts.instrument_sync import scheduled_sync

__all__ = ["scheduled_sync"]
