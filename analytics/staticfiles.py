"""A static files finder that serves Plotly's JavaScript bundle from the plotly package.

The dashboard draws its charts with plotly.js, which the `plotly` PyPI package ships
as plotly/package_data/plotly.min.js. This finder exposes that one file as
vendor/plotly.min.js, and nothing else of the package, to collectstatic, runserver
and WhiteNoise.
"""
from collections.abc import Iterator
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
FILE_NAME = "plotly.min.js"
STATIC_PATH = f"{PREFIX}/{FILE_NAME}"


def bundle_path() -> Path:
    return Path(plotly.__file__).resolve().parent / "package_data" / FILE_NAME


class PlotlyFinder(BaseFinder):
    """Finds vendor/plotly.min.js in the installed plotly package."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=bundle_path().parent)
        # collectstatic and WhiteNoise put a storage's files under its prefix.
        self.storage.prefix = PREFIX

    def check(self, **kwargs) -> list[CheckMessage]:
        if bundle_path().is_file():
            return []
        return [
            Error(
                f"{bundle_path()} is missing.",
                hint="Install the plotly version pinned in requirements.txt.",
                id="analytics.E001",
            )
        ]

    def find(self, path: str, find_all: bool = False, **kwargs) -> str | list[str]:
        if path != STATIC_PATH:
            return [] if find_all else ""
        found = str(bundle_path())
        return [found] if find_all else found

    def list(self, ignore_patterns) -> Iterator[tuple[str, FileSystemStorage]]:
        yield FILE_NAME, self.storage
