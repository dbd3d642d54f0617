"""SMS length: the encoding a text needs and how many billed parts it takes.

A text that fits the GSM 03.38 alphabet travels as 7-bit GSM: 160 septets in one
part, 153 per part once it is split (the rest of each part carries the concatenation
header). The extension characters, such as the euro sign and square brackets, take
two septets each. Any other character, Chinese included, forces UCS-2: 70 UTF-16
code units in one part, 67 per part when split. A character outside the Basic
Multilingual Plane, such as most emoji, takes two units.
"""

from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def sms_length(text: str) -> SmsLength:
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in text):
        units = sum(2 if char in GSM_EXTENSION else 1 for char in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units <= single:
        return SmsLength(encoding, units, 1 if units else 0)
    return SmsLength(encoding, units, -(-units // multi))


# Appended to marketing texts by the providers that send free text. A Chinese
# locale gets the reply keyword that mainland carriers and SMS platforms honour.
OPT_OUT_LINES = {
    "zh": "拒收请回复R",
    "en": "Reply STOP to opt out",
}
DEFAULT_OPT_OUT_LANGUAGE = "en"


def opt_out_line(locale: str) -> str:
    """Return the opt-out line for a locale such as "zh-Hans" or "en_US"."""
    language = locale.replace("_", "-").split("-")[0].lower()
    return OPT_OUT_LINES.get(language, OPT_OUT_LINES[DEFAULT_OPT_OUT_LANGUAGE])


def text_with_opt_out(body: str, marketing: bool, locale: str) -> str:
    """Return the text to send: the body, plus an opt-out line for marketing."""
    if not marketing:
        return body
    return f"{body}\n{opt_out_line(locale)}"
