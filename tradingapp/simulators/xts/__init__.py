"""A faithful XTS (Symphony Fintech) broker simulator: its own process, no tradingapp imports.

Run it with `python -m tradingapp.simulators.xts --port 9200` (or `make xts-sim`). It serves the
Interactive REST API under /interactive, the Market Data API under both /apimarketdata and
/marketdata, the socket.io streams at /interactive/socket.io and /{api,}marketdata/socket.io, and a
control API under /_sim (see control.py) for prices, RMS rejects and faults. The facts it follows
are in shared/xts-api.md, "Corrections and details" first.

Engine.IO: every socket.io path answers both protocol versions. Clients sending EIO=4 (python-
socketio 5) reach a python-socketio 5 server; clients sending EIO=3 (Socket.IO 2.x, as several
broker deployments still run) reach a python-socketio 4.6 server (the `socketio_v4` package).
Websocket transport needs gevent-websocket under gevent for the EIO 3 server; it serves both.

Modules: instruments (universe, master lines), market (price walk, quotes, OHLC), exchange
(orders, matching, RMS, positions: no I/O), rows (XTS row shapes), faults (knobs, rate limits),
sessions (accounts, JWT tokens), streams (socket.io), http/interactive/marketdata/control (routes),
simulator (the state), app (WSGI server).
"""
