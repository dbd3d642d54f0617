"""Provider adapters and the registry that maps provider keys to them."""
from channels_app.providers.aliyun_sms import AliyunSmsProvider
from channels_app.providers.base import Provider
from channels_app.providers.console import ConsoleProvider
from channels_app.providers.fcm import FcmProvider
from channels_app.providers.smtp import SmtpProvider
from channels_app.providers.sns import SnsProvider
from channels_app.providers.tencent_sms import TencentSmsProvider
from channels_app.providers.twilio_sms import TwilioProvider

REGISTRY: dict[str, type[Provider]] = {
    provider.key: provider
    for provider in (
        ConsoleProvider,
        SmtpProvider,
        FcmProvider,
        AliyunSmsProvider,
        TencentSmsProvider,
        TwilioProvider,
        SnsProvider,
    )
}


def provider_class(key: str) -> type[Provider] | None:
    return REGISTRY.get(key)
