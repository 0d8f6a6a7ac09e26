"""Uploading a CSV: it is profiled and kept; a bad file gets a clear message next to the file field and
leaves nothing behind; the dataset page shows the profile."""

import codecs
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils.html import escape

from tests.web.helpers import stored_dataset_files, upload, upload_dataset
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db


def test_it_profiles_and_keeps_a_good_csv(alice_client, alice, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    assert dataset.owner == alice
    assert dataset.rows == 569
    assert dataset.column_count == 31
    diagnosis = dataset.column("diagnosis")
    assert diagnosis["kind"] == "numeric"
    assert diagnosis["suggested_task"] == "classification"
    assert dataset.column("mean radius")["suggested_task"] == "regression"
    page = alice_client.get(reverse("dataset_detail", args=[dataset.pk]))
    assert b"mean radius" in page.content and b"Start the search" in page.content


def test_it_reports_missing_values_and_text_columns(alice_client, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("colour,size,label\nred,1.5,a\n,2.5,b\nblue,,a\nred,4,b\n")
    dataset = upload_dataset(alice_client, path)
    assert dataset.column("colour")["kind"] == "categorical"
    assert dataset.column("colour")["missing"] == 1
    assert dataset.column("size")["missing"] == 1
    assert dataset.column("label")["suggested_task"] == "classification"


AS_JSON = {"accept": "application/json"}  # what static/js/upload.js sends
BAD_FILES = [
    # (id, content, settings, words the message next to the file field must hold)
    ("empty", b"", {}, "file is empty."),  # Django's own words: "The submitted file is empty."
    ("blank-lines", b"\xef\xbb\xbf\n\n\n", {}, "The file is empty."),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\xff\xfe\x00binary", {}, "binary data"),
    ("excel", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", {}, "Excel workbook (.xlsx)"),
    ("latin-1", "name,price\ncrème,1\npâté,2\n".encode("cp1252"), {}, "not UTF-8 text: line 2"),
    ("utf-16", "a,b\n1,2\n3,4\n".encode("utf-16"), {}, "UTF-16 text, but NAS Studio reads UTF-8"),
    ("one-column", b"only_one_column\n1\n2\n3\n", {}, "at least two columns"),
    ("ragged", b"a,b\n1,2\n3,4\n5,6,7\n", {}, "Line 4 has 3 values but the header has 2 columns"),
    ("duplicate-names", b"a,b,a\n1,2,3\n4,5,6\n", {}, "Column names must be unique; repeated: a"),
    ("header-only", b"a,b\n", {}, "header but no data rows"),
    ("one-row", b"a,b\n1,2\n", {}, "only one data row"),
    ("open-quote", b'a,b\n1,2\n"3,4\n5,6\n', {}, 'A quote (") opened on line 3 is never closed'),
    ("long-cell", b"a,b\n1,2\n3," + b"x" * 51 + b"\n", {"CSV_MAX_FIELD_CHARS": 50}, "Line 3, column 'b'"),
    ("many-columns", b"a,b,c,d\n1,2,3,4\n5,6,7,8\n", {"CSV_MAX_COLUMNS": 3}, "at most 3"),
    ("many-rows", b"a,b\n" + b"1,2\n" * 6, {"CSV_MAX_ROWS": 5}, "more than 5 data rows"),
    ("long-name", b"a," + b"n" * 11 + b"\n1,2\n3,4\n", {"CSV_MAX_NAME_CHARS": 10}, "11 characters long"),
]


def file_field_html(page: str) -> str:
    """The upload page's file field, where its errors must appear."""
    start = page.index('id="file-field"')
    return page[start : page.index('id="name-field"', start)]


@pytest.mark.parametrize(
    ("content", "overrides", "message"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES]
)
def test_it_rejects_a_bad_file_and_keeps_nothing(alice_client, tmp_path, content, overrides, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    before = stored_dataset_files(settings.MEDIA_ROOT)
    with override_settings(**overrides):
        response = upload(alice_client, path)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["file"])
    field = file_field_html(response.content.decode())
    assert 'role="alert"' in field and escape(message) in field
    assert "Traceback" not in response.content.decode()
    assert not Dataset.objects.exists()
    assert stored_dataset_files(settings.MEDIA_ROOT) == before


def test_a_utf8_byte_order_mark_from_excel_is_fine(alice_client, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF8 + "name,price\ncrème,1\npâté,2\n".encode())
    dataset = upload_dataset(alice_client, path)
    assert dataset.column_names == ["name", "price"]


def test_the_page_script_gets_json_with_where_to_go(alice_client, breast_cancer_csv):
    with open(breast_cancer_csv, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle}, headers=AS_JSON)
    assert response.status_code == 201
    dataset = Dataset.objects.get()
    assert response.json() == {"redirect": reverse("dataset_detail", args=[dataset.pk])}
    # The success message waits for the dataset page, as after a plain post.
    assert (
        "Uploaded breast_cancer.csv: 569 rows, 31 columns."
        in alice_client.get(response.json()["redirect"]).content.decode()
    )


def test_the_page_script_gets_json_errors_by_field(alice_client, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"a,b\n1,2\n3\n")
    before = stored_dataset_files(settings.MEDIA_ROOT)
    with open(path, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle, "name": "x" * 201}, headers=AS_JSON)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"name"} and "at most 200 characters" in errors["name"][0]
    with open(path, "rb") as handle:
        response = alice_client.post(reverse("dataset_upload"), {"file": handle}, headers=AS_JSON)
    assert response.status_code == 400
    assert response.json() == {"errors": {"file": [
        "Line 3 has 1 value but the header has 2 columns. Every row needs one value per column (leave a cell "
        "empty, not out); a comma inside a value needs quotes around the value."
    ]}}  # fmt: skip
    response = alice_client.post(reverse("dataset_upload"), {}, headers=AS_JSON)
    assert response.json() == {"errors": {"file": ["This field is required."]}}
    assert not Dataset.objects.exists() and stored_dataset_files(settings.MEDIA_ROOT) == before


def test_the_upload_page_has_a_labelled_picker_a_drop_zone_and_a_progress_bar(alice_client):
    page = alice_client.get(reverse("dataset_upload")).content.decode()
    assert (
        '<label for="id_file">CSV file or image archive</label>' in page
        and 'id="id_file"' in page
        and 'accept=".csv,text/csv,.zip,.tar.gz,.tgz,.npz"' in page
    )
    assert 'id="dropzone"' in page and '<progress id="upload-progress" max="100" value="0"' in page
    assert f'data-max-bytes="{settings.MAX_UPLOAD_BYTES}"' in page and "js/upload.js" in page


def test_it_rejects_a_file_over_the_size_limit(alice_client, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,2\n" * 100_000)
    before = stored_dataset_files(settings.MEDIA_ROOT)
    with override_settings(MAX_UPLOAD_BYTES=64 * 1024, MAX_UPLOAD_MB=0.0625):
        response = upload(alice_client, path)
    assert response.status_code == 400
    assert "larger than" in " ".join(response.context["form"].errors["file"])
    assert not Dataset.objects.exists()
    assert stored_dataset_files(settings.MEDIA_ROOT) == before


def test_it_hides_other_users_datasets(alice_client, bob_client, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    assert bob_client.get(reverse("dataset_detail", args=[dataset.pk])).status_code == 404
    assert bob_client.post(reverse("dataset_delete", args=[dataset.pk])).status_code == 404
    assert b"breast_cancer" not in bob_client.get(reverse("home")).content
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_it_deletes_a_dataset_and_its_file(alice_client, breast_cancer_csv, django_capture_on_commit_callbacks):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    path = Path(dataset.file.path)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("dataset_delete", args=[dataset.pk]), {"confirm": "yes"})
    assert not Dataset.objects.exists()
    assert not path.exists()


@pytest.fixture
def warned_dataset(alice_client, tmp_path):
    """40 rows: an ID, a constant, a grade that gives 'passed' away, a numeric amount, and the target last."""
    lines = ["id,source,grade,amount,passed"]
    lines += [f"{100 + i},web,{'AB'[i % 2]},{i * 1.5:.1f},{['yes', 'no'][i % 2]}" for i in range(40)]
    path = tmp_path / "warned.csv"
    path.write_text("\n".join(lines) + "\n")
    return upload_dataset(alice_client, path)


def test_the_dataset_page_shows_the_profile_warnings_and_first_rows(alice_client, warned_dataset):
    response = alice_client.get(reverse("dataset_detail", args=[warned_dataset.pk]))
    page = response.content.decode()
    assert '<strong id="dataset-rows">40</strong>' in page and '<strong id="dataset-columns">5</strong>' in page
    assert "&#x27;id&#x27; has a different value in every row" in page
    assert "&#x27;source&#x27; holds only one value (&#x27;web&#x27;)" in page
    # The form's default target is the last column; its leak shows, the others' are hidden.
    assert '<span id="target-name">passed</span>' in page
    assert re.search(
        r'data-target="passed">\s*<strong>Possible leak:</strong> Each of the 2 values of &#x27;grade', page
    )
    assert re.search(r'data-target="grade" hidden>', page)
    preview = page[page.index('id="preview"') : page.index("</table>", page.index('id="preview"'))]
    assert preview.count("<tr>") == 11 and "<td>100</td>" in preview and "<td>109</td>" in preview
    assert "<td>110</td>" not in preview  # ten rows, no more
    chart = json.loads(page.split('<script id="profile-chart" type="application/json">')[1].split("</script>")[0])
    assert chart["passed"]["distribution"]["labels"] == ["yes", "no"]
    assert chart["amount"]["distribution"]["kind"] == "histogram"
    assert "vendor/plotly/plotly.min.js" in page and "js/profile.js" in page and "css/datasets.css" in page
    assert "css/configure.css" in page and "Start the search" in page


def test_the_page_follows_a_refused_search_forms_target(alice_client, warned_dataset):
    response = alice_client.post(
        reverse("search_create", args=[warned_dataset.pk]), {"target": "grade", "budget_seconds": 1}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert '<span id="target-name">grade</span>' in page
    assert re.search(r'data-target="grade">\s*<strong>Possible leak:</strong>', page)
    assert re.search(r'data-target="passed" hidden>', page) and 'id="preview"' in page


def test_a_dataset_profiled_before_the_new_keys_still_renders(alice_client, warned_dataset):
    columns = [{k: v for k, v in c.items() if k != "distribution"} for c in warned_dataset.profile["columns"]]
    old = {"rows": 40, "columns": columns}
    Dataset.objects.filter(pk=warned_dataset.pk).update(profile=old)
    response = alice_client.get(reverse("dataset_detail", args=[warned_dataset.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="profile"' in page and "No preview was kept for this dataset" in page
    assert "profiled before distributions were" in page and "Leaks into the target were not checked" in page
    assert re.search(r'<li class="muted" id="no-warnings">', page)


def test_the_upload_page_says_the_servers_limits(alice_client, settings):
    settings.IMAGE_MAX_FILES, settings.CSV_MAX_ROWS = 60_000, 2_000_000
    page = alice_client.get(reverse("dataset_upload")).content.decode()
    assert "up to 2,000,000 rows" in page and "up to 60,000 images" in page and "512 MB unpacked" in page


def test_a_large_table_says_its_columns_come_from_a_sample(alice_client, tmp_path, monkeypatch):
    from nas_engine import profiling

    monkeypatch.setattr(profiling, "PROFILE_SAMPLE_ROWS", 100)
    path = tmp_path / "rows.csv"
    path.write_text("x,y\n" + "".join(f"{i % 7},{i % 2}\n" for i in range(500)))
    dataset = upload_dataset(alice_client, path)
    assert dataset.rows == 500 and dataset.profile["sampled_rows"] == 100
    page = alice_client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    assert "random sample of\n    100 of the 500 rows" in page
