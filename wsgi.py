"""WSGI entry point: the only module-level app. Gunicorn serves it on PORT (backend) and
WEBSOCKET_PORT (websocket process); both run the same app."""

from tradingapp import create_app

app = create_app()
