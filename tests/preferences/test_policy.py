"""The pure policy engine: quiet hours, opt-outs and limits with plain values."""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from preferences.policy import (
    UNREGISTERED,
    Action,
    ChannelSettings,
    Counters,
    LimitHit,
    Limits,
    PreferenceRow,
    ProfileSettings,
    QuietWindow,
    TypeRules,
    check_limits,
    choose_channels,
    decide,
    local_day_start,
    localize,
    next_local_day_start,
    over_limit,
    quiet_window_end,
    resolve_settings,
    zone_for,
)

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietWindow(time(22, 0), time(7, 0))
MARKETING = TypeRules(category="marketing")
CRITICAL = TypeRules(is_critical=True)
NOON = datetime(2026, 6, 10, 12, tzinfo=timezone.utc)


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


def test_daily_limit_reached_suppresses_marketing():
    channel_settings = ChannelSettings(daily_limit=3)
    decision = decide(channel_settings, Counters(notifications_today=3), "normal", "UTC",
                      datetime(2026, 6, 10, 12, tzinfo=timezone.utc), MARKETING)
    assert decision.action == Action.SUPPRESS
    assert decision.reason == "frequency_limit"


def test_daily_limit_reached_defers_transactional_to_next_day():
    channel_settings = ChannelSettings(daily_limit=3)
    decision = decide(channel_settings, Counters(notifications_today=3), "normal",
                      "Europe/Berlin", berlin(2026, 6, 10, 12, 0))
    assert decision.action == Action.DEFER
    assert decision.reason == "frequency_limit"
    assert decision.release_at == berlin(2026, 6, 11, 0, 0).astimezone(timezone.utc)


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


# Type rules, frequency limits and channel choice.


def test_critical_type_ignores_all_disabled():
    decision = decide(ChannelSettings(all_enabled=False), Counters(), "normal", "UTC", NOON,
                      CRITICAL)
    assert decision.action == Action.SEND


def test_critical_type_ignores_disabled_row():
    decision = decide(ChannelSettings(enabled=False), Counters(), "normal", "UTC", NOON,
                      CRITICAL)
    assert decision.action == Action.SEND


def test_type_users_cannot_disable_ignores_opt_out():
    rules = TypeRules(user_can_disable=False)
    decision = decide(ChannelSettings(enabled=False), Counters(), "normal", "UTC", NOON, rules)
    assert decision.action == Action.SEND


def test_marketing_is_never_locked():
    assert TypeRules(category="marketing", is_critical=True, user_can_disable=False).locked is False


def test_unregistered_type_can_be_turned_off():
    decision = decide(ChannelSettings(enabled=False), Counters(), "normal", "UTC", NOON,
                      UNREGISTERED)
    assert decision.reason == "preference_disabled"


def test_urgent_marketing_respects_quiet_hours():
    decision = decide(ChannelSettings(quiet_window=NIGHT), Counters(), "urgent",
                      "Europe/Berlin", berlin(2026, 6, 10, 23, 30), MARKETING)
    assert decision.action == Action.DEFER
    assert decision.reason == "quiet_hours"


def test_critical_normal_priority_respects_quiet_hours():
    decision = decide(ChannelSettings(quiet_window=NIGHT), Counters(), "normal",
                      "Europe/Berlin", berlin(2026, 6, 10, 23, 30), CRITICAL)
    assert decision.action == Action.DEFER


def test_urgent_critical_bypasses_daily_limit():
    decision = decide(ChannelSettings(daily_limit=1), Counters(notifications_today=5),
                      "urgent", "UTC", NOON, CRITICAL)
    assert decision.action == Action.SEND


def test_urgent_critical_bypasses_min_interval():
    rules = TypeRules(is_critical=True, min_interval_seconds=600)
    counters = Counters(last_sent_at=NOON - timedelta(seconds=1))
    decision = decide(ChannelSettings(), counters, "urgent", "UTC", NOON, rules)
    assert decision.action == Action.SEND


def test_urgent_non_critical_keeps_daily_limit():
    decision = decide(ChannelSettings(daily_limit=1), Counters(notifications_today=1),
                      "urgent", "UTC", NOON)
    assert decision.action == Action.DEFER


def test_min_interval_defers_to_last_send_plus_interval():
    rules = TypeRules(min_interval_seconds=600)
    counters = Counters(last_sent_at=NOON - timedelta(seconds=100))
    decision = decide(ChannelSettings(), counters, "normal", "UTC", NOON, rules)
    assert decision.action == Action.DEFER
    assert decision.reason == "min_interval"
    assert decision.release_at == NOON + timedelta(seconds=500)


def test_min_interval_passed_sends():
    rules = TypeRules(min_interval_seconds=600)
    counters = Counters(last_sent_at=NOON - timedelta(seconds=600))
    assert decide(ChannelSettings(), counters, "normal", "UTC", NOON, rules).action == Action.SEND


def test_min_interval_suppresses_marketing():
    rules = TypeRules(category="marketing", min_interval_seconds=600)
    counters = Counters(last_sent_at=NOON)
    decision = decide(ChannelSettings(), counters, "normal", "UTC", NOON, rules)
    assert decision.action == Action.SUPPRESS
    assert decision.reason == "min_interval"


def test_channel_limit_defers_transactional():
    decision = decide(ChannelSettings(channel_daily_limit=2), Counters(channel_messages_today=2),
                      "normal", "UTC", NOON)
    assert decision.action == Action.DEFER
    assert decision.release_at == datetime(2026, 6, 11, tzinfo=timezone.utc)


def test_unenforced_limits_never_hit():
    limits = Limits(daily=0, channel_daily=0, min_interval_seconds=60, enforced=False)
    assert check_limits(limits, Counters(notifications_today=9, last_sent_at=NOON), NOON) is None


def test_limits_counted_only_when_some_limit_is_set():
    assert Limits().counted is False
    assert Limits(daily=0).counted is True
    assert Limits(min_interval_seconds=1).counted is True


def test_over_limit_keeps_retry_time_of_interval():
    hit = LimitHit("min_interval", NOON + timedelta(minutes=5))
    decision = over_limit(hit, UNREGISTERED, "Asia/Shanghai", NOON)
    assert decision.release_at == NOON + timedelta(minutes=5)


def test_next_day_start_across_spring_forward():
    # Santiago skips midnight on 2026-09-06: the day starts at 01:00 local.
    now = datetime(2026, 9, 5, 15, 0, tzinfo=timezone.utc)
    start = next_local_day_start(now, "America/Santiago")
    local = start.astimezone(ZoneInfo("America/Santiago"))
    assert local.date().isoformat() == "2026-09-06"
    assert start > now


def test_channels_from_request_win():
    rules = TypeRules(default_channels=("email",))
    assert choose_channels(["app"], rules, "normal") == ["app"]


def test_channels_default_to_type_in_order():
    rules = TypeRules(default_channels=("app", "email"))
    assert choose_channels([], rules, "normal") == ["app", "email"]


def test_urgent_adds_sms_when_type_allows():
    rules = TypeRules(default_channels=("app",), sms_for_urgent=True)
    assert choose_channels([], rules, "urgent") == ["app", "sms"]


def test_urgent_sms_not_added_twice():
    rules = TypeRules(sms_for_urgent=True)
    assert choose_channels(["sms", "app"], rules, "urgent") == ["sms", "app"]


def test_normal_priority_adds_no_sms():
    rules = TypeRules(default_channels=("app",), sms_for_urgent=True)
    assert choose_channels([], rules, "high") == ["app"]


def test_urgent_without_sms_for_urgent_adds_nothing():
    assert choose_channels(["app"], UNREGISTERED, "urgent") == ["app"]


CATEGORIES = ["transactional", "marketing", "system"]
PRIORITIES = ["low", "normal", "high", "urgent"]


@st.composite
def type_rules(draw):
    return TypeRules(
        category=draw(st.sampled_from(CATEGORIES)),
        is_critical=draw(st.booleans()),
        user_can_disable=draw(st.booleans()),
        min_interval_seconds=draw(st.none() | st.integers(min_value=1, max_value=86_400)),
    )


MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                       timezones=st.just(timezone.utc))


@settings(max_examples=300, deadline=None)
@given(
    rules=type_rules(),
    priority=st.sampled_from(PRIORITIES),
    zone=st.sampled_from(ZONES),
    moment=MOMENTS,
    daily=st.none() | st.integers(min_value=0, max_value=5),
    channel_daily=st.none() | st.integers(min_value=0, max_value=5),
    sent_today=st.integers(min_value=0, max_value=8),
    on_channel=st.integers(min_value=0, max_value=8),
    since_last=st.none() | st.integers(min_value=0, max_value=200_000),
)
def test_limit_decisions_follow_category(rules, priority, zone, moment, daily, channel_daily,
                                         sent_today, on_channel, since_last):
    channel_settings = ChannelSettings(daily_limit=daily, channel_daily_limit=channel_daily)
    last = None if since_last is None else moment - timedelta(seconds=since_last)
    counters = Counters(sent_today, on_channel, last)
    decision = decide(channel_settings, counters, priority, zone, moment, rules)

    over_daily = daily is not None and sent_today >= daily
    over_channel = channel_daily is not None and on_channel >= channel_daily
    too_soon = bool(rules.min_interval_seconds) and last is not None and (
        moment - last < timedelta(seconds=rules.min_interval_seconds))
    exceeded = over_daily or over_channel or too_soon
    bypass = priority == "urgent" and rules.is_critical and rules.category != "marketing"

    if bypass or not exceeded:
        assert decision.action == Action.SEND
    elif rules.category == "marketing":
        assert decision.action == Action.SUPPRESS
    else:
        assert decision.action == Action.DEFER
        assert decision.release_at > moment
    if decision.action != Action.SEND:
        assert decision.reason in ("frequency_limit", "min_interval")
    if decision.action == Action.DEFER and not (over_daily or over_channel):
        assert decision.release_at == last + timedelta(seconds=rules.min_interval_seconds)
    if decision.action == Action.DEFER and (over_daily or over_channel):
        local_release = decision.release_at.astimezone(ZoneInfo(zone))
        assert local_release.date() > moment.astimezone(ZoneInfo(zone)).date()
        assert decision.release_at - moment <= timedelta(hours=26)


@settings(max_examples=300, deadline=None)
@given(rules=type_rules(), priority=st.sampled_from(PRIORITIES),
       all_enabled=st.booleans(), enabled=st.booleans(), moment=MOMENTS)
def test_locked_types_never_suppressed_by_opt_out(rules, priority, all_enabled, enabled,
                                                  moment):
    channel_settings = ChannelSettings(all_enabled=all_enabled, enabled=enabled)
    decision = decide(channel_settings, Counters(), priority, "UTC", moment, rules)
    if rules.locked or (all_enabled and enabled):
        assert decision.action == Action.SEND
    else:
        assert decision.action == Action.SUPPRESS
    if rules.category == "marketing" and not (all_enabled and enabled):
        assert decision.action == Action.SUPPRESS


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), moment=MOMENTS)
def test_next_day_start_is_next_local_midnight(zone, moment):
    start = next_local_day_start(moment, zone)
    assert start > moment
    assert start - moment <= timedelta(hours=26)
    assert local_day_start(start, zone) == start
    assert local_day_start(start - timedelta(seconds=1), zone) == local_day_start(moment, zone)
