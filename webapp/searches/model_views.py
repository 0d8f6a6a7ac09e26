"""The model page of one trial: its model card, its layers drawn as a diagram, and "try it" forms that
predict an uploaded CSV, or one row typed in the page, in the page. The upload (or the typed row)
lives in a temporary file for the request only."""

from __future__ import annotations

import csv
import tempfile

from django import forms
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

import nas_engine
from nas_engine import runtime
from nas_engine.importance import ranked
from nas_engine.model_card import Section
from webapp.searches import bundles, selectors
from webapp.searches.models import Trial
from webapp.searches.spreadsheet import spreadsheet_safe

TEMPLATE = "searches/trial.html"
PAGE_ROWS = 100  # predictions shown in the page; the CSV download has all of them
CLASS_COLUMNS = 6  # up to this many classes, each gets its own probability column
TOP_CLASSES = 3  # with more classes, the most likely few are listed


class TryItForm(forms.Form):
    file = forms.FileField(
        label="CSV file of new rows",
        help_text=(
            f"The same columns as the training data (the target column may be left out); "
            f"at most {bundles.TRY_MAX_ROWS:,} rows and {settings.MAX_UPLOAD_MB} MB. Nothing is kept."
        ),
    )

    def __init__(self, *args, images: bool = False, too_large: bool = False, max_columns: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.too_large = too_large
        self.images = images
        if max_columns:
            self.fields["file"].help_text = (
                f"The same columns as the training data (the target column may be left out); at most "
                f"{bundles.TRY_MAX_ROWS:,} rows, {max_columns:,} columns and {settings.MAX_UPLOAD_MB} MB. "
                "Nothing is kept."
            )
        self.accept = ".png,.jpg,.jpeg,image/png,image/jpeg" if images else ".csv,text/csv"
        if images:
            self.fields["file"].label = "Image file (PNG or JPEG)"
            self.fields["file"].help_text = (
                f"One image, of any size: it is resized as the training images were. At most "
                f"{settings.MAX_UPLOAD_MB} MB. Nothing is kept."
            )

    def clean(self):
        if self.too_large:
            # The upload handler dropped the file; "this field is required" would mislead.
            self._errors.pop("file", None)
            self.add_error("file", f"The file is larger than the {settings.MAX_UPLOAD_MB} MB limit.")
        return super().clean()


ONE_ROW_MAX_COLUMNS = 60  # up to this many inputs the page offers a form of one field per column


class OneRowForm(forms.Form):
    """One field per input column of the model, filled in with the training rows' median (numbers) or
    most frequent value (categories): change a few and see the prediction move. Fields are named
    ``col_0``, ``col_1``… (column names may hold any character); each is labelled with its column."""

    def __init__(self, *args, preprocessing: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = list(preprocessing["feature_columns"])
        for i, feature in enumerate(preprocessing["features"]):
            if feature["kind"] == "numeric":
                initial, hint = f"{feature['median']:g}", "a number (empty: the training median)"
            elif feature["kind"] == "date":
                initial, hint = feature["example"], "a date, e.g. 2024-03-31 (empty: the training median)"
            else:
                known = feature["categories"]
                initial = known[0] if known else ""
                shown = ", ".join(known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
                hint = f"one of: {shown}" if known else "any text"
            self.fields[f"col_{i}"] = forms.CharField(
                label=feature["name"], required=False, initial=initial, max_length=1000, help_text=hint,
                strip=True, empty_value="",
            )  # fmt: skip

    def row(self) -> dict[str, str]:
        """The typed row, by column name (call after ``is_valid()``)."""
        return {name: self.cleaned_data[f"col_{i}"] for i, name in enumerate(self.columns)}


def _one_row_form(trial: Trial, data=None) -> OneRowForm | None:
    preprocessing = trial.job.preprocessing
    if "image" in preprocessing or len(preprocessing["feature_columns"]) > ONE_ROW_MAX_COLUMNS:
        return None  # pixels, or too many fields to type: the CSV upload is the way
    return OneRowForm(data, preprocessing=preprocessing)


def _predict_one_row(trial: Trial, form: OneRowForm) -> tuple[bundles.TriedRows | None, int]:
    """The typed row's prediction through the same path as an upload (a one-row CSV for the request)."""
    if not form.is_valid():
        return None, 400
    with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=form.columns)
        writer.writeheader()
        writer.writerow(form.row())
        handle.flush()
        return _tried(lambda: bundles.trial_try_predictions(trial=trial, csv_path=handle.name), form, field=None)


def importance_bars(test_metrics: dict, *, top: int = 15) -> list[dict]:
    """The largest permutation importances of a model's test metrics, each with its bar's width (%
    of the largest; a negative drop draws no bar)."""
    importance = list(ranked((test_metrics or {}).get("importance", {})).items())[:top]
    largest = max((value for _, value in importance), default=0.0)
    return [
        {"name": name, "value": value, "percent": round(100 * max(value, 0.0) / largest, 1) if largest > 0 else 0.0}
        for name, value in importance
    ]


def _page(request, trial: Trial, *, status: int = 200, card: nas_engine.ModelCard | None = None, **extra):
    context = {
        "trial": trial,
        "job": trial.job,
        "diagram": bundles.trial_layer_diagram(trial=trial),
        "importance": importance_bars(trial.test_metrics),
        **extra,
    }
    if card is not None:
        # The introduction is drawn like a section without a heading: one loop renders every block.
        context |= {"card": card, "card_sections": (Section(title="", blocks=card.intro), *card.sections)}
    return render(request, TEMPLATE, context, status=status)


def _no_model_reason(trial: Trial) -> str:
    if trial.job.preprocessing is None:
        return "The search has not prepared its data yet, so there is no model to show."
    why = f" {trial.message}" if trial.message else ""
    return f"Trial {trial.number} was {trial.status}, so it has no trained model.{why}"


@require_http_methods(["GET", "POST"])
def trial_detail(request, pk: int, number: int):
    trial = selectors.get_trial_for_user(user=request.user, pk=pk, number=number)
    if trial.status not in Trial.WITH_MODEL or trial.job.preprocessing is None:
        return _page(request, trial, status=409, no_model=_no_model_reason(trial))
    card = bundles.trial_model_card(trial=trial)
    images = "image" in trial.job.preprocessing
    max_columns = 0 if images else bundles.try_max_columns(trial.job.preprocessing)
    blank = TryItForm(images=images, max_columns=max_columns)
    if request.method == "GET":
        return _page(request, trial, card=card, form=blank, row_form=_one_row_form(trial))
    if request.POST.get("format") == "row":
        row_form = _one_row_form(trial, request.POST)
        if row_form is None:
            return _page(request, trial, status=400, card=card, form=blank)
        tried, status = _predict_one_row(trial, row_form)
        if tried is None:
            return _page(request, trial, status=status, card=card, form=blank, row_form=row_form)
        shown = {"tried": _shown(tried), "tried_total": 1, "tried_row": True}
        return _page(request, trial, card=card, form=blank, row_form=row_form, **shown)
    data, files = request.POST, request.FILES  # reading the upload sets upload_too_large
    too_large = getattr(request, "upload_too_large", False)
    form = TryItForm(data, files, images=images, too_large=too_large, max_columns=max_columns)
    try:
        tried, status = _predict_upload(trial, form)
    finally:
        for upload in request.FILES.values():
            upload.close()  # a temporary upload deletes its file on close: nothing of it is kept
    if tried is None:
        return _page(request, trial, status=status, card=card, form=form, row_form=_one_row_form(trial))
    if request.POST.get("format") == "csv":
        return _predictions_csv(trial, tried)
    shown = {"tried": _shown(tried), "tried_total": len(tried.predictions)}
    return _page(request, trial, card=card, form=form, row_form=_one_row_form(trial), **shown)


def _predict_upload(trial: Trial, form: TryItForm) -> tuple[bundles.TriedRows | None, int]:
    """The upload's predictions and 200, or None and the error status with the reason on the file field:
    400 for a file the model cannot read, 409 when the model itself cannot be loaded."""
    if not form.is_valid():
        return None, 400
    upload = form.cleaned_data["file"]

    def predict() -> bundles.TriedRows:
        if form.images:
            return bundles.trial_try_images(trial=trial, images=[(upload.name, upload.read())])
        path = upload.temporary_file_path()  # settings stream every upload to disk
        return bundles.trial_try_predictions(trial=trial, csv_path=path)

    return _tried(predict, form, field="file")


def _tried(predict, form: forms.Form, *, field: str | None) -> tuple[bundles.TriedRows | None, int]:
    """``predict()``'s rows and 200, or None and the error status with the reason on ``field`` (None:
    the form's own errors): 400 for input the model cannot read, 409 when the model cannot be loaded."""
    try:
        return predict(), 200
    except nas_engine.DatasetError as exc:
        form.add_error(field, str(exc))
        return None, 400
    except nas_engine.NasError as exc:
        form.add_error(field, str(exc))
        return None, 409


def _shown(tried: bundles.TriedRows) -> dict:
    """The first PAGE_ROWS predictions as table rows: number, prediction, top probability, per class."""
    rows = []
    for i, prediction in enumerate(tried.predictions[:PAGE_ROWS]):
        # ``exact`` is the cell predict.py writes for this row; ``text`` is shorter, for reading.
        row = {"number": i + 1, "exact": runtime.format_prediction(prediction), "text": _prediction_text(prediction)}
        if tried.probabilities is not None:
            percents = [100 * float(p) for p in tried.probabilities[i]]
            row["probability"] = percents[tried.labels.index(prediction)]
            row["per_class"] = percents if len(tried.labels) <= CLASS_COLUMNS else []
            if not row["per_class"]:  # too many classes for a column each: the most likely few instead
                best = sorted(range(len(percents)), key=lambda k: -percents[k])[:TOP_CLASSES]
                row["top"] = [(tried.labels[k], percents[k]) for k in best]
        if i < len(tried.contributions):  # "amount +12.3 pts": how far each input moved this prediction
            scale, unit = (100, " pts") if tried.labels else (1, "")
            row["why"] = [(name, f"{scale * move:+.3g}{unit}") for name, move in tried.contributions[i] if move]
        rows.append(row)
    per_class = tried.probabilities is not None and len(tried.labels) <= CLASS_COLUMNS
    top = tried.probabilities is not None and not per_class
    return {
        "rows": rows,
        "labels": tried.labels if per_class else [],
        "classification": bool(tried.labels),
        "top": top,
        "why": any(row.get("why") for row in rows),
    }


def _prediction_text(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _predictions_csv(trial: Trial, tried: bundles.TriedRows) -> HttpResponse:
    """Every prediction as CSV: row, prediction, and for classification the probability of each class."""
    response = HttpResponse(content_type="text/csv")
    filename = f"search{trial.job_id}-trial{trial.number}-try-predictions.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    probabilities = tried.probabilities
    writer.writerow(["row", "prediction", *(spreadsheet_safe(f"probability {label}") for label in tried.labels)])
    for i, prediction in enumerate(tried.predictions):
        cells = [str(i + 1), spreadsheet_safe(prediction)]
        if probabilities is not None:
            cells += [repr(float(p)) for p in probabilities[i]]
        writer.writerow(cells)
    return response
