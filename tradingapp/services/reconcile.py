"""Moved to tradingapp/services/orders/reconcile.py (issue 12). This alias goes once
brokers/xts/upkeep.py imports reconcile_books from there."""

from tradingapp.services.orders.reconcile import reconcile_books

__all__ = ["reconcile_books"]
