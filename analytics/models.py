from django.db import models


class HourlyStat(models.Model):
    """Counters of the records sent in one UTC hour, per channel, provider, type and variant.

    A record counts in the hour it was sent, or failed if it never was, and its later
    receipts and engagement events add to that same row, so each row's rates describe
    one cohort of messages.
    """

    hour = models.DateTimeField()
    channel_kind = models.CharField(max_length=16)
    provider = models.CharField(max_length=32, blank=True, default="")
    notification_type = models.CharField(max_length=64)
    # NOTE: nothing fills this yet; every row has no campaign.
    campaign_id = models.BigIntegerField(null=True, blank=True)
    variant = models.CharField(max_length=64, blank=True, default="")
    sent = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    opened = models.BigIntegerField(default=0)
    clicked = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    unsubscribed = models.BigIntegerField(default=0)
    # Billed SMS parts of the sent messages; zero for other channel kinds.
    segments = models.BigIntegerField(default=0)
    # In the currency of Channel.cost_per_message.
    cost = models.DecimalField(max_digits=18, decimal_places=5, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "hour", "channel_kind", "provider", "notification_type",
                    "campaign_id", "variant",
                ],
                name="unique_hourly_stat",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.channel_kind}/{self.provider} {self.notification_type}"
