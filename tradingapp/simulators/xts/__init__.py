"""A faithful XTS (Symphony Fintech) broker simulator: its own process, no tradingapp imports.

Run it with `python -m tradingapp.simulators.xts --port 9200` (or `make xts-sim`). What it serves
(both Engine.IO versions), its modules and its control API under /_sim: docs/xts-simulator.md.
The facts it follows are in shared/xts-api.md, "Corrections and details" first.
"""
