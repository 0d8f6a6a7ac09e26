"""The upload form: a CSV file or an image archive, and an optional display name."""

from django import forms
from django.conf import settings


class DatasetUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file or image archive",
        help_text=(
            "A CSV with a header row (one column is the target), or images: a .zip or .tar.gz whose "
            "top-level folders are the class names, holding PNG or JPEG files (or an .npz with x and y)."
        ),
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv,.zip,.tar.gz,.tgz,.npz"}),
    )
    name = forms.CharField(max_length=200, required=False, help_text="Optional; the file name by default.")
    image_size = forms.IntegerField(
        label="Image size (images only)", required=False, min_value=8, max_value=64,
        help_text="Every image is resized to this many pixels square. Empty: the images' median size, "
        "at most 32 (bigger images train much slower on a CPU).",
    )  # fmt: skip

    def __init__(self, *args, too_large: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.too_large = too_large

    def clean(self):
        if self.too_large:
            # The upload handler dropped the file; "this field is required" would mislead.
            self._errors.pop("file", None)
            self.add_error("file", f"The file is larger than the {settings.MAX_UPLOAD_MB} MB limit.")
        return super().clean()

    def error_lists(self) -> dict[str, list[str]]:
        """Each field's messages (``__all__`` for the form's own), as the upload page's script shows them."""
        return {field: [str(message) for message in messages] for field, messages in self.errors.items()}
