"""Make a personal API token for a user and print it once (for scripts and operators)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from webapp.accounts import tokens


class Command(BaseCommand):
    help = "Make an API token for USERNAME and print it once: only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for (shown in its list)")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive: a token would open nothing.")
        _, token = tokens.token_create(user=user, name=name)
        self.stdout.write(token)
