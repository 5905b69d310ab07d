"""Both tick stores: modules whose tests must hold on TimescaleDB's hypertable (the suite's default
database, where the server has the extension) and on plain PostgreSQL (`plain_app`, migrated with
TIMESCALEDB=off) override `app` with

    @pytest.fixture(scope="module", params=STORES)
    def app(request, app, plain_app):
        return on_each_store(request, app, plain_app)

so `db`, `client` and the consumer fixtures run each test once per store (ids [timescaledb], [plain]).
Why the whole module and not a marker: the stores differ under every query (chunks, compression,
drop_chunks), so ingest, candles, retention and the migrations are each checked on both."""

from __future__ import annotations

STORES = ["timescaledb", "plain"]


def on_each_store(request, app, plain_app):
    return plain_app if request.param == "plain" else app
