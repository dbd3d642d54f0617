"""The finder that serves plotly.js from the plotly package, and nothing else of it."""
from pathlib import Path

import plotly
import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

from analytics import staticfiles
from analytics.staticfiles import PlotlyFinder

PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"


def test_finder_finds_bundle():
    found = PlotlyFinder().find("vendor/plotly.min.js")
    assert Path(found) == PACKAGE_DATA / "plotly.min.js"
    assert Path(found).stat().st_size > 1_000_000


def test_finder_find_all():
    assert PlotlyFinder().find("vendor/plotly.min.js", find_all=True) == [
        str(PACKAGE_DATA / "plotly.min.js")
    ]


@pytest.mark.parametrize(
    "path", ["plotly.min.js", "vendor/widgetbundle.js", "vendor/../plotly.min.js",
             "vendor/templates/plotly.json"],
)
def test_finder_ignores_other_paths(path):
    assert PlotlyFinder().find(path) == ""
    assert PlotlyFinder().find(path, find_all=True) == []


def test_finder_lists_one_file():
    listed = [(path, storage.prefix) for path, storage in PlotlyFinder().list(None)]
    assert listed == [("plotly.min.js", "vendor")]


def test_settings_use_finder():
    assert finders.find("vendor/plotly.min.js") == str(PACKAGE_DATA / "plotly.min.js")


def test_check_passes_with_bundle():
    assert PlotlyFinder().check() == []


def test_check_reports_missing_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(staticfiles, "bundle_path", lambda: tmp_path / "plotly.min.js")
    errors = PlotlyFinder().check()
    assert [error.id for error in errors] == ["analytics.E001"]


def test_collectstatic_copies_only_bundle(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    assert (tmp_path / "vendor" / "plotly.min.js").is_file()
    assert sorted(path.name for path in (tmp_path / "vendor").iterdir()) == ["plotly.min.js"]
    assert not list(tmp_path.rglob("widgetbundle.js"))


def test_bundle_served(client):
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()


def test_other_package_data_not_served(client):
    assert client.get("/static/vendor/widgetbundle.js").status_code == 404
