"""Create the first staff account if no superuser exists yet (used by `make run` and the compose
file's migrate service).

Its password is ADMIN_PASSWORD when set; otherwise a random one, printed once here and never stored
in clear (the database keeps only Django's hash of it)."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser (ADMIN_USERNAME, default admin) if none exists, with ADMIN_PASSWORD or, when unset, a "
        "random password printed once."
    )

    def handle(self, *args, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; not creating one.")
            return
        username = os.environ.get("ADMIN_USERNAME") or "admin"
        given = os.environ.get("ADMIN_PASSWORD", "")
        password = given or secrets.token_urlsafe(15)  # 20 characters, 120 random bits
        users.objects.create_superuser(username=username, email=os.environ.get("ADMIN_EMAIL", ""), password=password)
        if given:
            self.stdout.write(
                self.style.SUCCESS(f"Created the superuser {username!r} with the password in ADMIN_PASSWORD.")
            )
            return
        rule = "=" * 72
        self.stdout.write(
            self.style.WARNING(
                f"{rule}\n"
                f"  Created the superuser {username!r}. Its password, shown only this once:\n\n"
                f"      {password}\n\n"
                "  Keep it now: it is not stored anywhere in clear. Change it at /admin/, or\n"
                "  set ADMIN_USERNAME / ADMIN_PASSWORD before the first run.\n"
                f"{rule}"
            )
        )
