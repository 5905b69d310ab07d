"""REST API blueprints: one module per resource, all under /api/v1 (health at the root). The
WebSocket route (tradingapp/ws/) is registered by create_app beside them."""

from __future__ import annotations

from flask import Flask


def register_api(app: Flask) -> None:
    from tradingapp.api import health

    app.register_blueprint(health.bp)
    # Resource blueprints: add one import-and-register line per module.
    from tradingapp.api import auth

    app.register_blueprint(auth.bp)
    from tradingapp.api import instruments

    app.register_blueprint(instruments.bp)
    from tradingapp.api import candles

    app.register_blueprint(candles.bp)
    from tradingapp.api import quotes

    app.register_blueprint(quotes.bp)
    from tradingapp.api import openapi, portfolio
    from tradingapp.api import order_routes as orders

    app.register_blueprint(orders.bp)
    app.register_blueprint(portfolio.bp)
    app.register_blueprint(openapi.bp)
    from tradingapp.api import admin

    app.register_blueprint(admin.bp)
    from tradingapp.api import accounts

    app.register_blueprint(accounts.bp)
    from tradingapp.api import watchlists

    app.register_blueprint(watchlists.bp)
    from tradingapp.api import meta

    app.register_blueprint(meta.bp)
    from tradingapp.api import order_estimate

    app.register_blueprint(order_estimate.bp)
    # Last: the terminal's catch-all for client routes (never /api, /health, /ready, /metrics, /ws).
    from tradingapp.api import frontend

    frontend.init_app(app)
