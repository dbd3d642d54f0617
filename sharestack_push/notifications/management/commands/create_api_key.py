from django.core.management.base import BaseCommand, CommandError

from sharestack_push.notifications.constants import Scope
from sharestack_push.notifications.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key and print it as the last line; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A label for the key, such as the calling service.")
        parser.add_argument(
            "--scope", action="append", dest="scopes", default=[],
            help=f"A scope to grant; repeat for several. One of: {', '.join(Scope.values)}.",
        )

    def handle(self, *args, name: str, scopes: list[str], **options):
        unknown = sorted(set(scopes) - set(Scope.values))
        if unknown:
            raise CommandError(f"Unknown scope {', '.join(unknown)}; use {', '.join(Scope.values)}.")
        if not scopes:
            raise CommandError("Give at least one --scope.")
        api_key, plain = ApiKey.objects.create_key(name, sorted(set(scopes)))
        self.stderr.write(f"Created API key {api_key.name!r} with scopes {', '.join(api_key.scopes)}.")
        self.stdout.write(plain)
