"""Campaigns: their push request, validation, sending once, audiences and progress.

A campaign is validated by the push API's serializer and becomes a task through the
same code as an API request, so the admin cannot create a task the API would reject.
"""
import csv
import logging
from collections.abc import Iterator
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from rest_framework import serializers

from analytics.counts import task_counts
from analytics.query import delivery_stats
from preferences.models import UserProfile
from sharestack_push.notifications.models import (
    Campaign,
    CampaignRecipient,
    PushTask,
)
from sharestack_push.notifications.segments import matching_profiles
from sharestack_push.notifications.service import save_task, task_from_request, validate_push
from sharestack_push.notifications.strategy import OPTIMAL

logger = logging.getLogger(__name__)

USER_ID_MAX_LENGTH = 64
# Uploaded ids are inserted this many at a time, so memory keeps one batch.
RECIPIENT_BATCH_SIZE = 5000
# An upload with more bad lines lists only the first ones.
MAX_LISTED_ERRORS = 20
# A push API field: the campaign field that stores its value.
CAMPAIGN_FIELD_BY_API_FIELD = {
    "notification_type": "notification_type",
    "template": "template_name",
    "variables": "variables",
    "content": "body",
    "options": "options",
    "channels": "channels",
    # Raised when the channels name only group channels, which reach no user.
    "user_id": "channels",
    "priority": "priority",
    "schedule_time": "schedule_time",
    "send_at": "send_mode",
    "variants": "variants",
}
TARGET_OF_AUDIENCE = {
    Campaign.Audience.ALL: PushTask.Target.BROADCAST,
    Campaign.Audience.SEGMENT: PushTask.Target.SEGMENT,
    Campaign.Audience.UPLOAD: PushTask.Target.UPLOAD,
}


class CampaignInvalid(Exception):
    """The campaign would make a push request that the API rejects.

    `errors` maps campaign field names (or None for the whole campaign) to messages.
    """

    def __init__(self, errors: dict[str | None, list[str]]) -> None:
        super().__init__("; ".join(message for messages in errors.values() for message in messages))
        self.errors = errors


class AlreadySent(Exception):
    """The campaign has a task already; a campaign is sent once."""


class UploadInvalid(Exception):
    """An uploaded CSV of user ids has bad lines; `errors` names each by its line."""

    def __init__(self, errors: list[str], bad_lines: int) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.bad_lines = bad_lines


def campaign_content(campaign: Campaign) -> dict[str, Any]:
    """Return the template or content part of the campaign's push request."""
    if campaign.template_name:
        return {"template": campaign.template_name}
    return {"content": {"title": campaign.title, "body": campaign.body}}


def push_payload(campaign: Campaign) -> dict[str, Any]:
    """Build the push API request body that the campaign stands for.

    Every audience reaches users, so the body sets broadcast, which the API validates
    as it would a segment or a list. The task's real target is set after validation.
    """
    data: dict[str, Any] = {
        "notification_id": f"campaign-{campaign.pk}",
        "notification_type": campaign.notification_type,
        "broadcast": True,
        "priority": campaign.priority,
        "options": campaign.options,
        "variables": campaign.variables,
    }
    if campaign.channels:
        data["channels"] = campaign.channels
    if campaign.variants:
        data["variants"] = [variant_payload(campaign, entry) for entry in campaign.variants]
    else:
        data.update(campaign_content(campaign))
    if campaign.send_mode == Campaign.SendMode.AT and campaign.schedule_time:
        data["schedule_time"] = campaign.schedule_time.isoformat()
    elif campaign.send_mode == Campaign.SendMode.OPTIMAL:
        data["send_at"] = OPTIMAL
    return data


def variant_payload(campaign: Campaign, entry: Any) -> Any:
    """Give a variant without template and content the campaign's own."""
    if isinstance(entry, dict) and "template" not in entry and "content" not in entry:
        return {**entry, **campaign_content(campaign)}
    return entry


def flatten_errors(detail: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (dotted path, message) for each message of a DRF error detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from flatten_errors(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list) and detail and not isinstance(detail[0], str):
        for index, value in enumerate(detail):
            if value:
                yield from flatten_errors(value, f"{path}[{index}]")
    elif isinstance(detail, list):
        for message in detail:
            yield path, str(message)
    else:
        yield path, str(detail)


def campaign_errors(detail: Any) -> dict[str | None, list[str]]:
    """Map a push API error detail onto the campaign's fields."""
    errors: dict[str | None, list[str]] = {}
    for path, message in flatten_errors(detail):
        top = path.split(".")[0].split("[")[0]
        field = CAMPAIGN_FIELD_BY_API_FIELD.get(top)
        text = message if field and path == top else f"{path}: {message}"
        errors.setdefault(field, []).append(text)
    return errors


def audience_errors(campaign: Campaign) -> dict[str | None, list[str]]:
    errors: dict[str | None, list[str]] = {}
    if campaign.audience == Campaign.Audience.SEGMENT and campaign.segment_id is None:
        errors["segment"] = ["Choose a segment for a segment audience."]
    if campaign.send_mode == Campaign.SendMode.AT and campaign.schedule_time is None:
        errors["schedule_time"] = ["Give the time to send at."]
    return errors


def validate_campaign(campaign: Campaign) -> dict[str, Any]:
    """Validate the campaign as the push API would; return the validated request.

    Raises CampaignInvalid with the errors mapped onto the campaign's fields.
    """
    errors = audience_errors(campaign)
    try:
        data = validate_push(push_payload(campaign))
    except serializers.ValidationError as error:
        for field, messages in campaign_errors(error.detail).items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise CampaignInvalid(errors)
    return data


def send_campaign(campaign_id: int, user: AbstractBaseUser | None) -> PushTask:
    """Create the campaign's task and enqueue it when the transaction commits.

    The campaign row is locked and the task's campaign link is unique, so a second
    click or a double submit gets AlreadySent instead of a second task. Raises
    CampaignInvalid when the API would reject the campaign, or the uploaded list is
    empty.
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if PushTask.objects.filter(campaign=campaign).exists():
            raise AlreadySent(f"Campaign {campaign.name!r} was sent already.")
        data = validate_campaign(campaign)
        if campaign.audience == Campaign.Audience.UPLOAD and not campaign.recipients.exists():
            raise CampaignInvalid({"recipients_file": ["Upload a CSV of user ids first."]})
        task = task_from_request(data, None)
        task.target = TARGET_OF_AUDIENCE[Campaign.Audience(campaign.audience)]
        task.campaign = campaign
        task.created_by = user if user is not None and user.is_authenticated else None
        try:
            save_task(task)
        except IntegrityError:
            # Without row locks (SQLite), the unique campaign link stops the second task.
            raise AlreadySent(f"Campaign {campaign.name!r} was sent already.") from None
    logger.info("campaign: %s sent as task %s (%s)", campaign.pk, task.pk, task.status)
    return task


class NotUtf8(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(f"Line {line}: the file is not UTF-8 text; save it as UTF-8.")
        self.line = line


def decoded_lines(upload: IO[bytes]) -> Iterator[str]:
    """Decode an upload line by line, so a bad byte is reported with its line."""
    for number, raw in enumerate(upload, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise NotUtf8(number) from None


def read_user_ids(upload: IO[bytes]) -> Iterator[str]:
    """Yield the user ids of a CSV upload whose header names a user_id column.

    Reads the file as a stream and skips empty lines. After the last id, raises
    UploadInvalid naming the bad lines: an empty id, an id longer than 64 characters,
    a missing user_id header, or text that is not UTF-8.
    """
    errors: list[str] = []
    bad_lines = 0
    reader = csv.reader(decoded_lines(upload))
    try:
        column = user_id_column(reader)
        for row in reader:
            problem = row_problem(row, column)
            if problem:
                bad_lines += 1
                if len(errors) < MAX_LISTED_ERRORS:
                    errors.append(f"Line {reader.line_num}: {problem}")
            elif row:
                yield row[column].strip()
    except NotUtf8 as error:
        bad_lines += 1
        errors.append(str(error))
    except csv.Error as error:
        bad_lines += 1
        errors.append(f"Line {reader.line_num}: not valid CSV ({error}).")
    except UploadInvalid as error:
        errors, bad_lines = error.errors, error.bad_lines
    if errors:
        if bad_lines > len(errors):
            errors.append(f"… and {bad_lines - len(errors)} more bad lines.")
        raise UploadInvalid(errors, bad_lines)


def user_id_column(reader: Any) -> int:
    header = next(reader, None)
    if header is None:
        raise UploadInvalid(["Line 1: the file is empty; start it with the header user_id."], 1)
    names = [cell.strip().lower() for cell in header]
    if "user_id" not in names:
        found = ", ".join(header) or "an empty line"
        raise UploadInvalid(
            [f"Line 1: the header must name a user_id column; found {found!r}."], 1
        )
    return names.index("user_id")


def row_problem(row: list[str], column: int) -> str:
    if not row:
        return ""
    value = row[column].strip() if column < len(row) else ""
    if not value:
        return "user_id is empty."
    if "\x00" in value:
        return "user_id contains a NUL character."
    if len(value) > USER_ID_MAX_LENGTH:
        return f"user_id {value[:16]!r}… is longer than {USER_ID_MAX_LENGTH} characters."
    return ""


def count_user_ids(upload: IO[bytes]) -> int:
    """Check a whole upload without storing it; return its ids, duplicates included."""
    count = sum(1 for _ in read_user_ids(upload))
    upload.seek(0)
    return count


def store_recipients(campaign: Campaign, upload: IO[bytes]) -> int:
    """Replace the campaign's uploaded audience; return how many distinct ids it has.

    Duplicates are dropped by the (campaign, user_id) unique constraint. One
    transaction, so a file with a bad line leaves the previous list in place.
    """
    with transaction.atomic():
        CampaignRecipient.objects.filter(campaign=campaign).delete()
        batch: dict[str, None] = {}
        for user_id in read_user_ids(upload):
            batch[user_id] = None
            if len(batch) >= RECIPIENT_BATCH_SIZE:
                insert_recipients(campaign, batch)
                batch = {}
        insert_recipients(campaign, batch)
        stored = CampaignRecipient.objects.filter(campaign=campaign).count()
    logger.info("campaign: %s audience uploaded, %s user ids", campaign.pk, stored)
    return stored


def insert_recipients(campaign: Campaign, user_ids: dict[str, None]) -> None:
    rows = [CampaignRecipient(campaign=campaign, user_id=user_id) for user_id in user_ids]
    CampaignRecipient.objects.bulk_create(rows, ignore_conflicts=True)


def audience_size(campaign: Campaign) -> int:
    """Count the users in the campaign's audience now."""
    if campaign.audience == Campaign.Audience.UPLOAD:
        return campaign.recipients.count()
    if campaign.audience == Campaign.Audience.SEGMENT:
        if campaign.segment is None:
            return 0
        return matching_profiles(campaign.segment.conditions).count()
    return UserProfile.objects.count()


def campaign_progress(campaign: Campaign, task: PushTask) -> dict[str, Any]:
    """Collect the progress page's numbers: records by status and roll-up results."""
    counts, total = task_counts(task.pk)
    by_status: dict[str, int] = {}
    for statuses in counts.values():
        for status, count in statuses.items():
            by_status[status] = by_status.get(status, 0) + count
    params = {"campaign": [campaign.pk]}
    totals = delivery_stats(params)["totals"] | {"label": "total"}
    by_channel = delivery_stats(params | {"group_by": ["channel"]}).get("groups", [])
    by_variant = delivery_stats(params | {"group_by": ["variant"]}).get("groups", [])
    return {
        "records_total": total,
        "records_by_status": dict(sorted(by_status.items())),
        "by_channel": [totals, *[row | {"label": row["channel"]} for row in by_channel]],
        "by_variant": [row | {"label": row["variant"] or "(none)"} for row in by_variant],
    }
