"""Fixtures of the security tests."""

import pytest

from tests.support.stack import Stack, reset_to_demo_data


@pytest.fixture(scope="module")
def backend(app, env):
    """gunicorn with gunicorn.conf.py (the backend alone), for what only a real server shows: chunked
    bodies, gunicorn's own refusals before Flask sees a request."""
    reset_to_demo_data(app)
    stack = Stack(env).start(["backend"])
    try:
        yield stack
    finally:
        stack.stop()
