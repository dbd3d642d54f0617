"""Provider adapters and the registry that maps provider keys to them."""
from channels_app.providers.aliyun_push import AliyunPushProvider
from channels_app.providers.aliyun_sms import AliyunSmsProvider
from channels_app.providers.anymail_esp import MailgunProvider, PostmarkProvider
from channels_app.providers.apns import ApnsProvider
from channels_app.providers.base import Provider
from channels_app.providers.console import ConsoleProvider
from channels_app.providers.fcm import FcmProvider
from channels_app.providers.huawei import HuaweiProvider
from channels_app.providers.jpush import JPushProvider
from channels_app.providers.smtp import SmtpProvider
from channels_app.providers.sns import SnsProvider
from channels_app.providers.tencent_sms import TencentSmsProvider
from channels_app.providers.tpns import TpnsProvider
from channels_app.providers.twilio_sms import TwilioProvider
from channels_app.providers.wechat_subscribe import WeChatSubscribeProvider
from channels_app.providers.wechat_template import WeChatTemplateProvider
from channels_app.providers.wecom_app import WeComAppProvider
from channels_app.providers.wecom_robot import WeComRobotProvider
from channels_app.providers.xiaomi import XiaomiProvider

REGISTRY: dict[str, type[Provider]] = {
    provider.key: provider
    for provider in (
        ConsoleProvider,
        SmtpProvider,
        MailgunProvider,
        PostmarkProvider,
        FcmProvider,
        ApnsProvider,
        HuaweiProvider,
        XiaomiProvider,
        JPushProvider,
        AliyunPushProvider,
        TpnsProvider,
        AliyunSmsProvider,
        TencentSmsProvider,
        TwilioProvider,
        SnsProvider,
        WeChatTemplateProvider,
        WeChatSubscribeProvider,
        WeComAppProvider,
        WeComRobotProvider,
    )
}


def provider_class(key: str) -> type[Provider] | None:
    return REGISTRY.get(key)
