"""An uploaded dataset: the file on disk and its profile."""

from django.conf import settings
from django.db import models


class Dataset(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    original_filename = models.CharField(max_length=255)
    file = models.FileField(upload_to="datasets/", max_length=500)
    size_bytes = models.BigIntegerField()
    rows = models.PositiveIntegerField()
    column_count = models.PositiveIntegerField()
    profile = models.JSONField(help_text="nas_engine.DatasetProfile.to_dict()")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def column_names(self) -> list[str]:
        return [column["name"] for column in self.profile["columns"]]

    @property
    def image(self) -> dict | None:
        """The image profile (classes, sizes, sample thumbnails) of an image dataset; None for a CSV."""
        return self.profile.get("image")

    def column(self, name: str) -> dict | None:
        return next((column for column in self.profile["columns"] if column["name"] == name), None)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "rows": self.rows,
            "columns": self.column_count,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at.isoformat(),
        }
