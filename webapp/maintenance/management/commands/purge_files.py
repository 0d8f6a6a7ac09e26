"""Delete the files nothing needs any more (see webapp.maintenance.services); --dry-run only lists them."""

from django.core.management.base import BaseCommand, CommandError

from webapp.maintenance import services


def human_size(size_bytes: int) -> str:
    if size_bytes < 1024:
        return f"{size_bytes} bytes"
    size = size_bytes / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class Command(BaseCommand):
    help = (
        "Delete dataset files no dataset uses, folders of deleted searches, bundles older than "
        "RETENTION_DAYS and leftovers of interrupted exports, all under MEDIA_ROOT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be deleted; delete nothing.")

    def handle(self, *args, dry_run: bool, **options):
        report = services.files_purge(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for item in report.purged:
            self.stdout.write(f"{verb} {item.path} ({item.reason}, {human_size(item.size_bytes)})")
        for failure in report.failed:
            self.stderr.write(f"could not delete {failure.path}: {failure.error}")
        count = f"{len(report.purged)} path{'' if len(report.purged) == 1 else 's'}"
        size = human_size(report.bytes_freed)
        if report.bytes_freed >= 1024:
            size += f" ({report.bytes_freed} bytes)"
        if dry_run:
            self.stdout.write(f"Dry run: would delete {count} and free {size}. Nothing was deleted.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Deleted {count} and freed {size}."))
        if report.failed:
            raise CommandError(f"{len(report.failed)} paths could not be deleted; see the lines above.")
