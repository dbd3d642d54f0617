from django.core.management.base import BaseCommand
from django.db import transaction

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications.constants import Scope
from sharestack_push.notifications.models import ApiKey
from templates.models import PushTemplate

DEMO_USER = "demo-user"
DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = (
        "Load a small demo: a console email channel, a demo user with an email address, "
        "a welcome template, and a new API key with every scope, printed last."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        Channel.objects.get_or_create(
            name="console-email",
            defaults={"kind": "email", "provider": "console", "config": {}},
        )
        UserProfile.objects.get_or_create(user_id=DEMO_USER)
        Contact.objects.get_or_create(user_id=DEMO_USER, kind=Contact.Kind.EMAIL, address=DEMO_EMAIL)
        PushTemplate.objects.get_or_create(
            name="welcome", channel="email", locale="",
            defaults={
                "type": "account",
                "title_template": "Welcome, {{ name }}",
                "content_template": "Hello {{ name }}, your ShareStack account is ready.",
                "variables": ["name"],
            },
        )
        # Each run prints a fresh key, so the keys of earlier runs are revoked.
        ApiKey.objects.filter(name="demo", is_active=True).update(is_active=False)
        _, plain = ApiKey.objects.create_key("demo", list(Scope.values))
        self.stderr.write(
            f"Demo loaded: user {DEMO_USER!r} with email {DEMO_EMAIL}, channel 'console-email', "
            "template 'welcome'. The API key below has every scope:"
        )
        self.stdout.write(plain)
