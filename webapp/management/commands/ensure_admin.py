"""Create the default staff account if no superuser exists yet (used by `make run`)."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser from ADMIN_USERNAME / ADMIN_PASSWORD (default admin/admin) if none exists."

    def handle(self, *args, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; not creating one.")
            return
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD", "admin")
        users.objects.create_superuser(username=username, email=os.environ.get("ADMIN_EMAIL", ""), password=password)
        self.stdout.write(
            self.style.WARNING(
                f"Created the superuser {username!r} with password {password!r}. "
                "Change it at /admin/ (or set ADMIN_USERNAME / ADMIN_PASSWORD before the first run)."
            )
        )
