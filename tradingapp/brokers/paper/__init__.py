"""The paper exchange: a broker that trades against the live market in the Redis quote cache, with
a book of its own. broker.py is the Broker (place, cancel, modify, lookup, on_ticks); matching.py
its rules (pure); book.py its orders; journal.py their events; tape.py ticks and the session end;
models.py its tables. README: Orders."""
