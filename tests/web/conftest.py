from pathlib import Path

import pytest
from wsgiscope.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def app():
    return create_app({"TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def live_server(live_address):
    """``wsgiscope serve`` (gunicorn, gthread) on a free loopback port (tests/conftest.py)."""
    return live_address


