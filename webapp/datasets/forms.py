"""The upload form: a CSV file or an image archive, and an optional display name."""

from django import forms
from django.conf import settings

from nas_engine.images import MIN_SIDE, side_limits


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
    image_size = forms.IntegerField(label="Image size (images only)", required=False)

    def __init__(self, *args, too_large: bool = False, gpu: bool = False, **kwargs):
        """``gpu``: a worker of this site trains on a GPU, so bigger images are worth their cost."""
        super().__init__(*args, **kwargs)
        self.too_large, self.gpu = too_large, gpu
        largest, largest_chosen = side_limits(gpu=gpu)
        why = (
            "this server's workers train on a GPU"
            if gpu
            else "this server's workers train on the CPU, where bigger images train much slower "
            "(a server with a GPU worker takes up to 96)"
        )
        self.fields["image_size"] = forms.IntegerField(
            label="Image size (images only)",
            required=False,
            min_value=MIN_SIDE,
            max_value=largest_chosen,
            help_text=f"Every image is resized to this many pixels square, {MIN_SIDE} to {largest_chosen}. Empty: "
            f"the images' median size, at most {largest}: {why}.",
        )

    def clean(self):
        if self.too_large:
            # The upload handler dropped the file; "this field is required" would mislead.
            self._errors.pop("file", None)
            self.add_error("file", f"The file is larger than the {settings.MAX_UPLOAD_MB} MB limit.")
        return super().clean()

    def error_lists(self) -> dict[str, list[str]]:
        """Each field's messages (``__all__`` for the form's own), as the upload page's script shows them."""
        return {field: [str(message) for message in messages] for field, messages in self.errors.items()}
