from tests.staff import chromium, staff_client, staff_user  # noqa: F401
