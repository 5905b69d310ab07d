"""The XTS wing (Symphony Fintech), everything XTS. REST: session.py (HTTP, envelope, shared login),
interactive.py (the Interactive API's paths), marketdata.py, portfolio.py, accounts.py (credentials
handed in), broker.py (the Broker). Rows to events: mapping.py. The worker's duties: books.py (the
book reconcile's reads), instrument_sync.py, upkeep.py. The event bridge: stream.py, order_stream.py,
market_stream.py, outbox.py, ticks.py. Every answer and payload is read through untrusted.py (caps,
bounded numbers). Nothing is imported here (the bridge takes `mapping` alone).
"""
