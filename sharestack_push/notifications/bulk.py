"""Bulk writes of records with executemany(), without the ORM's query compiler.

Django's bulk_update() builds a CASE WHEN per field and row, and bulk_create() prepares
every value through the query compiler. For the record table both cost more CPU than
the sends themselves (profiled on a 10,000-user broadcast). A multi-row VALUES list is
no better: psycopg re-parses a statement with thousands of placeholders on every call.
These helpers send one short statement many times instead, which psycopg pipelines and
PostgreSQL prepares once.
"""
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models, router, transaction


def preparer(field: models.Field, connection) -> Callable[[Any], Any]:
    """Return a function that turns a field's Python value into a query parameter.

    psycopg adapts plain values itself, so on PostgreSQL only JSON needs Django's
    preparation; SQLite needs it for dates and times as well.
    """
    if connection.vendor == "postgresql" and not isinstance(field, models.JSONField):
        return lambda value: value
    return lambda value: field.get_db_prep_save(value, connection)


def insert_sql(model: type[models.Model], conflict_fields: list[str], connection) -> str:
    """Build an INSERT of one row of every non-key column that skips unique conflicts."""
    quote = connection.ops.quote_name
    fields = insert_fields(model)
    columns = ", ".join(quote(field.column) for field in fields)
    conflict = ", ".join(quote(model._meta.get_field(name).column) for name in conflict_fields)
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({conflict}) DO NOTHING"
    )


def insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def insert_rows(model: type[models.Model], instances: Sequence[models.Model], connection) -> list[list]:
    fields = insert_fields(model)
    prepare = [preparer(field, connection) for field in fields]
    rows = []
    for instance in instances:
        for field in fields:
            field.pre_save(instance, add=True)
        rows.append([prep(getattr(instance, field.attname)) for field, prep in zip(fields, prepare)])
    return rows


def insert_ignoring_conflicts(
    model: type[models.Model], instances: Sequence[models.Model], conflict_fields: list[str]
) -> None:
    """Insert instances without primary keys; skip rows that hit the unique fields."""
    if not instances:
        return
    connection = connections[router.db_for_write(model)]
    sql = insert_sql(model, conflict_fields, connection)
    rows = insert_rows(model, instances, connection)
    with transaction.atomic(using=connection.alias, savepoint=False):
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def insert_new(
    model: type[models.Model], instances: Sequence[models.Model], conflict_fields: list[str]
) -> list[models.Model]:
    """Insert instances one statement each; return those that were new, with their keys.

    Slower than insert_ignoring_conflicts, for the few rows whose caller must know
    whether this insert or an earlier one stored them.
    """
    if not instances:
        return []
    connection = connections[router.db_for_write(model)]
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    sql = f"{insert_sql(model, conflict_fields, connection)} RETURNING {pk_column}"
    rows = insert_rows(model, instances, connection)
    inserted = []
    with transaction.atomic(using=connection.alias, savepoint=False):
        with connection.cursor() as cursor:
            for instance, row in zip(instances, rows):
                cursor.execute(sql, row)
                returned = cursor.fetchone()
                if returned is not None:
                    instance.pk = returned[0]
                    instance._state.adding = False
                    inserted.append(instance)
    return inserted


def update_fields(
    model: type[models.Model], instances: Sequence[models.Model], field_names: list[str]
) -> None:
    """Write the named fields of saved instances, one pipelined UPDATE per row."""
    if not instances:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    prepare = [preparer(field, connection) for field in fields]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} "
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )
    rows = [
        [*(prep(getattr(instance, field.attname)) for field, prep in zip(fields, prepare)), instance.pk]
        for instance in instances
    ]
    with transaction.atomic(using=connection.alias, savepoint=False):
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
