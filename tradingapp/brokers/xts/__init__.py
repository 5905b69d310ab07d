"""The XTS broker (Symphony Fintech): the REST client (session, broker, marketdata), the mapping
of XTS order and trade rows to our broker events (mapping), and the socket.io event bridge's parts.

Nothing is imported here: the bridge imports `mapping` without pulling in the HTTP client.
"""
