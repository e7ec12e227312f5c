"""The tests' identity provider: a local issuer, whatever the environment or ``.env`` says."""

from __future__ import annotations

import os

import pytest

from issuer import LocalIssuer

ISSUER = LocalIssuer()
# Set before the tests import the app, which reads them once.
os.environ["AUTH_ISSUER"] = ISSUER.url
os.environ["AUTH_AUDIENCE"] = ""
os.environ["AUTH_AUTHORIZED_PARTIES"] = ""


def pytest_sessionstart(session: pytest.Session) -> None:
    ISSUER.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ISSUER.stop()


@pytest.fixture
def issuer() -> LocalIssuer:
    """The issuer the app trusts: ``issuer.token("alice")`` is a valid token."""
    return ISSUER
