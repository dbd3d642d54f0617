"""Tell opens and clicks made by software apart from those made by people.

A hit is machine traffic when any of these rules matches, checked in this order:

1. HEAD request: browsers and mail clients fetch a pixel or follow a link with GET,
   while link checkers probe with HEAD.
2. Client address in PUSH_MACHINE_NETWORKS, such as Apple's published iCloud Private
   Relay egress ranges, through which Mail Privacy Protection prefetches images.
3. Apple Mail Privacy Protection: its prefetch sends the bare User-Agent "Mozilla/5.0"
   with no platform comment, which no browser or mail client sends.
4. No User-Agent at all.
5. A User-Agent naming a link scanner, security gateway, crawler or HTTP library
   (SCANNER_PATTERN).
6. A hit less than MIN_HUMAN_SECONDS (5) after the record's sent_at: security gateways
   fetch links and images while the message is delivered, before anyone can read it.
"""
import ipaddress
import re
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

from sharestack_push.notifications.constants import MachineReason

MIN_HUMAN_SECONDS = 5
# NOTE: a heuristic from public reports about Mail Privacy Protection, not an Apple
# specification; Apple may change the header.
APPLE_PRIVACY_PROXY_AGENT = "Mozilla/5.0"
# Product and vendor names of link scanners, security gateways, crawlers and HTTP
# libraries, matched as whole words so that a phone brand such as Cubot, or "San
# Francisco" in a user agent comment, is not taken for "bot" or "cisco".
SCANNER_WORDS = (
    "barracuda", "mimecast", "proofpoint", "symantec", "messagelabs", "forcepoint",
    "trendmicro", "sophos", "fortiguard", "cisco", "ironport", "safelinks",
    "bingpreview", "google-safety", "googlebot", "bingbot",
    "facebot", "slackbot", "applebot", "headlesschrome", "phantomjs", "bot", "crawler",
    "spider", "scanner", "python-requests", "python-urllib", "aiohttp", "go-http-client",
    "curl", "wget", "libwww", "java", "okhttp", "apache-httpclient",
)
SCANNER_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(word) for word in SCANNER_WORDS) + r")\b"
    # A product token with a version whose name ends in bot, crawler or spider, such
    # as "Twitterbot/1.0", "SemrushBot/7~bl", "Baiduspider/2.0" or "DuckDuckBot-Https/1.1".
    r"|\b[a-z0-9]*(?:bot|crawler|spider)(?:-[a-z0-9]+)*/",
    re.IGNORECASE,
)


@lru_cache(maxsize=8)
def parse_networks(
    entries: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def in_networks(address: str, entries: list[str]) -> bool:
    if not address or not entries:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in parse_networks(tuple(entries)))


def client_ip(request: HttpRequest) -> str:
    """Return the client address: REMOTE_ADDR, or X-Forwarded-For behind trusted proxies.

    Behind a proxy listed in PUSH_TRUSTED_PROXIES, the X-Forwarded-For entries are read
    from the right, and the first one that is not itself a trusted proxy is the client.
    Anything left of it could have been written by the client.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.PUSH_TRUSTED_PROXIES
    if not in_networks(remote, trusted):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not in_networks(hop, trusted):
            return hop if valid_ip(hop) else remote
    return remote


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def machine_reason(
    method: str, ip: str, user_agent: str, sent_at: datetime | None, now: datetime
) -> str:
    """Return the MachineReason of a hit, or "" when it looks like a person."""
    if method == "HEAD":
        return MachineReason.HEAD_REQUEST
    if in_networks(ip, settings.PUSH_MACHINE_NETWORKS):
        return MachineReason.APPLE_PRIVACY_PROXY
    agent = user_agent.strip()
    if agent == APPLE_PRIVACY_PROXY_AGENT:
        return MachineReason.APPLE_PRIVACY_PROXY
    if not agent:
        return MachineReason.MISSING_USER_AGENT
    if SCANNER_PATTERN.search(agent):
        return MachineReason.LINK_SCANNER
    if sent_at is not None and now - sent_at < timedelta(seconds=MIN_HUMAN_SECONDS):
        return MachineReason.TOO_SOON_AFTER_SEND
    return ""
