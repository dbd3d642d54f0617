"""Check the README's provider table and docs/providers.md against the registry.

Each provider key needs a row in the README's "### Channels" table whose config and
credentials cells name exactly the adapter's keys, with the required keys before
"optional:", and a section heading in docs/providers.md.
"""
import re
from pathlib import Path

import pytest

from channels_app.providers import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PROVIDERS_DOC = ROOT / "docs" / "providers.md"
CODE_NAME = re.compile(r"`([^`]+)`")


def channel_table_rows() -> dict[str, list[str]]:
    """Return the cells of each row of the README's channel table, keyed by provider."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Channels\n", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        key = CODE_NAME.fullmatch(cells[0])
        if key is not None:
            rows[key.group(1)] = cells
    return rows


def split_cell(cell: str) -> tuple[list[str], list[str]]:
    """Return the names before and after "optional:" in a table cell."""
    required, _, optional = cell.partition("optional:")
    return CODE_NAME.findall(required), CODE_NAME.findall(optional)


def doc_headings() -> list[str]:
    lines = PROVIDERS_DOC.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.startswith("#")]


ROWS = channel_table_rows()
KEYS = sorted(REGISTRY)


@pytest.mark.parametrize("key", KEYS)
def test_readme_row_config_keys(key):
    assert key in ROWS, f"README.md has no channel table row for {key!r}"
    required, optional = split_cell(ROWS[key][2])
    provider = REGISTRY[key]

    assert sorted(required) == sorted(provider.required_config)
    assert sorted(optional) == sorted(provider.optional_config)


@pytest.mark.parametrize("key", KEYS)
def test_readme_row_credential_keys(key):
    assert key in ROWS, f"README.md has no channel table row for {key!r}"
    required, optional = split_cell(ROWS[key][3])
    provider = REGISTRY[key]

    assert sorted(required) == sorted(provider.required_credentials)
    assert sorted(optional) == sorted(provider.optional_credentials)


@pytest.mark.parametrize("key", KEYS)
def test_readme_row_kind(key):
    assert key in ROWS, f"README.md has no channel table row for {key!r}"
    kinds = REGISTRY[key].kinds
    expected = "any" if len(kinds) > 1 else kinds[0]

    assert ROWS[key][1] == expected


def test_readme_rows_name_registered_providers():
    unknown = sorted(set(ROWS) - set(REGISTRY))

    assert unknown == [], f"README.md has rows for unregistered providers: {unknown}"


@pytest.mark.parametrize("key", KEYS)
def test_providers_doc_section(key):
    headings = doc_headings()

    assert any(f"`{key}`" in heading for heading in headings), (
        f"docs/providers.md has no section heading for {key!r}"
    )
