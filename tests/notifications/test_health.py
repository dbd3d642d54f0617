"""/healthz, the schema and the interactive docs."""
import pytest
from django.test import Client


def test_healthz_ok_with_database_and_broker(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_503_when_broker_down(db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "unavailable"
    assert response.json()["database"] == "ok"


@pytest.mark.parametrize("url", ["/api/v1/schema/", "/api/docs/"])
def test_schema_and_docs_need_no_key(db, url):
    assert Client().get(url).status_code == 200
