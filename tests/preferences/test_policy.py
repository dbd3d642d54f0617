"""The pure policy engine: quiet hours, opt-outs and limits with plain values."""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from preferences.policy import (
    Action,
    ChannelSettings,
    Counters,
    PreferenceRow,
    ProfileSettings,
    QuietWindow,
    decide,
    local_day_start,
    localize,
    quiet_window_end,
    resolve_settings,
    zone_for,
)

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietWindow(time(22, 0), time(7, 0))


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def decide_at(moment: datetime, window=NIGHT, priority="normal", **settings_fields):
    channel_settings = ChannelSettings(quiet_window=window, **settings_fields)
    return decide(channel_settings, Counters(), priority, "Europe/Berlin", moment)


def test_inside_night_window_defers_to_its_end():
    decision = decide_at(berlin(2026, 6, 10, 23, 30))
    assert decision.action == Action.DEFER
    assert decision.reason == "quiet_hours"
    assert decision.release_at == berlin(2026, 6, 11, 7, 0).astimezone(timezone.utc)


def test_after_midnight_defers_to_same_morning():
    decision = decide_at(berlin(2026, 6, 11, 3, 0))
    assert decision.release_at == berlin(2026, 6, 11, 7, 0).astimezone(timezone.utc)


def test_minute_before_window_sends():
    assert decide_at(berlin(2026, 6, 10, 21, 59)).action == Action.SEND


def test_window_end_is_excluded():
    assert decide_at(berlin(2026, 6, 11, 7, 0)).action == Action.SEND


def test_window_start_is_included():
    assert decide_at(berlin(2026, 6, 10, 22, 0)).action == Action.DEFER


def test_early_morning_window_is_not_quiet_in_evening():
    window = QuietWindow(time(0, 0), time(8, 0))
    assert decide_at(berlin(2026, 6, 10, 21, 0), window=window).action == Action.SEND


def test_early_morning_window_is_quiet_at_night():
    window = QuietWindow(time(0, 0), time(8, 0))
    decision = decide_at(berlin(2026, 6, 11, 1, 0), window=window)
    assert decision.release_at == berlin(2026, 6, 11, 8, 0).astimezone(timezone.utc)


def test_empty_window_is_never_quiet():
    window = QuietWindow(time(9, 0), time(9, 0))
    assert decide_at(berlin(2026, 6, 10, 9, 0), window=window).action == Action.SEND


def test_urgent_skips_quiet_hours():
    assert decide_at(berlin(2026, 6, 10, 23, 30), priority="urgent").action == Action.SEND


def test_all_disabled_suppresses_even_urgent():
    decision = decide_at(berlin(2026, 6, 10, 12, 0), priority="urgent", all_enabled=False)
    assert decision.action == Action.SUPPRESS
    assert decision.reason == "all_disabled"


def test_disabled_channel_suppresses():
    decision = decide_at(berlin(2026, 6, 10, 12, 0), enabled=False)
    assert decision.reason == "preference_disabled"


def test_daily_limit_reached_suppresses():
    channel_settings = ChannelSettings(daily_limit=3)
    decision = decide(channel_settings, Counters(notifications_today=3), "normal", "UTC",
                      datetime(2026, 6, 10, 12, tzinfo=timezone.utc))
    assert decision.action == Action.SUPPRESS
    assert decision.reason == "frequency_limit"


def test_daily_limit_not_reached_sends():
    channel_settings = ChannelSettings(daily_limit=3)
    decision = decide(channel_settings, Counters(notifications_today=2), "normal", "UTC",
                      datetime(2026, 6, 10, 12, tzinfo=timezone.utc))
    assert decision.action == Action.SEND


def test_channel_limit_counts_channel_messages():
    channel_settings = ChannelSettings(channel_daily_limit=1)
    decision = decide(channel_settings, Counters(channel_messages_today=1), "normal", "UTC",
                      datetime(2026, 6, 10, 12, tzinfo=timezone.utc))
    assert decision.reason == "frequency_limit"


def test_type_row_overrides_wildcard_row():
    rows = [
        PreferenceRow("", "email", is_enabled=False),
        PreferenceRow("order", "email", is_enabled=True),
    ]
    assert resolve_settings(ProfileSettings(), rows, "order", "email").enabled is True
    assert resolve_settings(ProfileSettings(), rows, "promo", "email").enabled is False


def test_row_quiet_hours_override_profile():
    profile = ProfileSettings(quiet_hours_start=time(22), quiet_hours_end=time(7))
    rows = [PreferenceRow("order", "app", quiet_hours_start=time(1), quiet_hours_end=time(2))]
    resolved = resolve_settings(profile, rows, "order", "app")
    assert resolved.quiet_window == QuietWindow(time(1), time(2))


def test_profile_quiet_hours_apply_without_rows():
    profile = ProfileSettings(quiet_hours_start=time(22), quiet_hours_end=time(7), daily_limit=5)
    resolved = resolve_settings(profile, [], "order", "app")
    assert resolved.quiet_window == NIGHT
    assert resolved.daily_limit == 5


def test_rows_of_other_channels_are_ignored():
    rows = [PreferenceRow("order", "sms", is_enabled=False, frequency_limit=1)]
    resolved = resolve_settings(ProfileSettings(), rows, "order", "email")
    assert resolved.enabled is True
    assert resolved.channel_daily_limit is None


def test_unknown_zone_falls_back_to_utc():
    assert zone_for("Mars/Olympus") == ZoneInfo("UTC")
    assert zone_for("") == ZoneInfo("UTC")


def test_spring_forward_gap_end_never_releases_early():
    # Berlin skips 02:00-03:00 on 2026-03-29; a window ending 02:30 ends at 03:30 CEST.
    window = QuietWindow(time(1, 0), time(2, 30))
    local_now = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    end = quiet_window_end(window, local_now)
    assert end.astimezone(timezone.utc) == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)


def test_fall_back_repeated_hour_uses_first_occurrence():
    # Berlin repeats 02:00-03:00 on 2026-10-25.
    moment = localize(datetime(2026, 10, 25, 2, 30), BERLIN)
    assert moment.astimezone(timezone.utc) == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)


def test_local_day_start_in_shanghai():
    now = datetime(2026, 6, 10, 17, 0, tzinfo=timezone.utc)  # 01:00 on 11 June in Shanghai
    assert local_day_start(now, "Asia/Shanghai") == datetime(2026, 6, 10, 16, 0, tzinfo=timezone.utc)


ZONES = ["Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe",
         "America/Santiago", "Pacific/Chatham", "UTC"]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.times(),
    end=st.times(),
    moment=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                        timezones=st.just(timezone.utc)),
)
def test_deferral_always_ends_outside_window_and_later(zone, start, end, moment):
    window = QuietWindow(start.replace(microsecond=0), end.replace(microsecond=0))
    decision = decide(ChannelSettings(quiet_window=window), Counters(), "normal", zone, moment)
    if decision.action == Action.SEND:
        return
    assert decision.release_at > moment
    assert decision.release_at - moment <= timedelta(hours=26)
    released_local = decision.release_at.astimezone(ZoneInfo(zone))
    assert quiet_window_end(window, released_local) is None
