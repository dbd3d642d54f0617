"""Active hours: next local time across daylight-saving changes, and tie rules."""

from datetime import UTC, datetime, time

from preferences.activity import next_local_time, optimal_send_time, record_activity

BERLIN = "Europe/Berlin"


def test_next_local_time_later_today():
    now = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)  # 08:00 in Berlin (CEST)
    assert next_local_time(time(9), BERLIN, now) == datetime(
        2026, 6, 10, 7, 0, tzinfo=UTC
    )


def test_next_local_time_skips_spring_gap():
    # Berlin skips 02:00-03:00 on 29 March 2026; 02:00 becomes 03:00 CEST (01:00 UTC).
    now = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert next_local_time(time(2), BERLIN, now) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )


def test_next_local_time_autumn_overlap():
    # 02:00-03:00 occurs twice on 25 October 2026; the first 02:00 is 00:00 UTC.
    now = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)
    assert next_local_time(time(2), BERLIN, now) == datetime(
        2026, 10, 25, 0, 0, tzinfo=UTC
    )


def test_most_active_hour_wins_over_nearer_one():
    now = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)
    moment = optimal_send_time({9: 1, 20: 5}, "UTC", now, None)
    assert moment == datetime(2026, 6, 10, 20, 0, tzinfo=UTC)


def test_tie_takes_next_occurrence_even_tomorrow():
    now = datetime(2026, 6, 10, 21, 0, tzinfo=UTC)
    moment = optimal_send_time({9: 2, 20: 2}, "UTC", now, time(12))
    assert moment == datetime(2026, 6, 11, 9, 0, tzinfo=UTC)


def test_no_activity_and_no_default_is_now():
    now = datetime(2026, 6, 10, 21, 0, tzinfo=UTC)
    assert optimal_send_time({}, "UTC", now, None) == now


def test_record_activity_without_events_records_nothing(db):
    assert record_activity([]) == 0
