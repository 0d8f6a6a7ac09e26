"""The dataset pages in real Chromium: a new user's empty home, an upload through the file picker
with its progress bar, the profile (target chart that follows the chosen target, preview, warnings),
a drag-and-drop upload, a refused file shown next to the field, and a 375 px wide screen."""

import json
import random
import re

import pytest

from tests.conftest import PASSWORD
from webapp.datasets.models import Dataset

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Records what the upload's percentage shows, in sessionStorage, which outlives the page's move
# to the dataset page; the observer only reads the page.
RECORD_PROGRESS = """() => {
  const percent = document.getElementById("upload-percent");
  const seen = [];
  new MutationObserver(() => {
    seen.push(percent.textContent);
    sessionStorage.setItem("upload-progress", JSON.stringify(seen));
  }).observe(percent, { childList: true, characterData: true, subtree: true });
}"""

DATASET_PAGE = re.compile(r".*/datasets/\d+/$")  # not /datasets/upload/
PAGE_IS_NO_WIDER_THAN_THE_SCREEN = "document.documentElement.scrollWidth <= window.innerWidth"


def write_customers_csv(path, rows: int = 20_000):
    """A CSV of about a megabyte (so the upload takes more than one step) with an ID column, a
    constant column, a grade that gives the target away, a numeric amount, and the target last."""
    rng = random.Random(0)
    lines = ["customer_id,channel,region,amount,grade,churned"]
    for i in range(rows):
        churned = rng.random() < 0.3
        region = rng.choice(["north", "south", "east", "west"])
        lines.append(f"{10_000 + i},web,{region},{rng.gauss(120, 30):.2f},{'D' if churned else 'A'},{churned}")
    path.write_text("\n".join(lines) + "\n")
    return path


def log_in(page, base_url: str) -> None:
    page.goto(base_url + "/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")


def test_a_new_user_uploads_a_csv_and_reads_its_profile(live_server_url, alice, browser_page, tmp_path):
    page = browser_page
    csv_path = write_customers_csv(tmp_path / "customers.csv")
    log_in(page, live_server_url)
    assert page.is_visible("#empty-state")
    page.click("#empty-state a.button")

    page.wait_for_selector("#dropzone")
    page.set_input_files("input[name=file]", str(csv_path))
    assert "customers.csv" in page.inner_text("#chosen-file")
    page.evaluate(RECORD_PROGRESS)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(DATASET_PAGE)
    seen = json.loads(page.evaluate("sessionStorage.getItem('upload-progress')"))
    percents = [int(text.rstrip("%")) for text in seen]
    assert percents[-1] == 100 and percents == sorted(percents), seen

    # The profile: counts, the target's class balance, warnings, the first rows.
    assert page.inner_text("#dataset-rows") == "20000" and page.inner_text("#dataset-columns") == "6"
    assert page.inner_text("#target-name") == "churned"
    page.wait_for_function("document.getElementById('target-chart').dataset.target === 'churned'")
    assert page.get_attribute("#target-chart", "data-kind") == "counts"
    assert page.locator("#target-chart svg .barlayer .point path").count() == 2
    assert "2 distinct values" in page.inner_text("#target-summary")
    warnings = page.inner_text("#warnings")
    assert "'customer_id' has a different value in every row" in warnings
    assert "'channel' holds only one value ('web')" in warnings
    assert page.is_visible("#warnings li[data-target='churned']")  # grade gives churned away
    assert "'grade'" in page.inner_text("#warnings li[data-target='churned']")
    assert page.locator("#preview tbody tr").count() == 10
    assert page.locator("#profile").inner_text().count("customer_id") == 1

    # Another target: the chart redraws as a histogram, and churned's leak warning goes away.
    page.select_option("select[name=target]", "amount")
    page.wait_for_function("document.getElementById('target-chart').dataset.target === 'amount'")
    assert page.get_attribute("#target-chart", "data-kind") == "histogram"
    assert page.locator("#target-chart svg .barlayer .point path").count() > 5
    assert page.inner_text("#target-name") == "amount" and "Numbers from" in page.inner_text("#target-summary")
    assert not page.is_visible("#warnings li[data-target='churned']")

    # A phone-sized screen: the page itself never scrolls sideways; wide tables scroll in their box.
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    page.wait_for_function("document.getElementById('target-chart').dataset.target")
    assert page.evaluate(PAGE_IS_NO_WIDER_THAN_THE_SCREEN)
    assert page.eval_on_selector("#target-chart svg", "svg => svg.getBoundingClientRect().right") <= 375

    page.goto(live_server_url + "/")
    assert page.evaluate(PAGE_IS_NO_WIDER_THAN_THE_SCREEN)
    assert not page.is_visible("#empty-state")
    dataset = Dataset.objects.get()
    assert page.inner_text(f"#dataset-list a[href='/datasets/{dataset.pk}/']") == "customers.csv"
    page.goto(live_server_url + "/datasets/upload/")
    assert page.evaluate(PAGE_IS_NO_WIDER_THAN_THE_SCREEN)


def test_a_dropped_file_uploads_and_a_bad_one_is_refused_beside_the_field(live_server_url, alice, browser_page):
    page = browser_page
    log_in(page, live_server_url)
    page.goto(live_server_url + "/datasets/upload/")

    def drop(name: str, text: str) -> None:
        transfer = page.evaluate_handle(
            """([name, text]) => {
              const transfer = new DataTransfer();
              transfer.items.add(new File([text], name, { type: "text/csv" }));
              return transfer;
            }""",
            [name, text],
        )
        page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})

    drop("header_only.csv", "a,b\n")
    assert "header_only.csv" in page.inner_text("#chosen-file")
    page.click("#upload-form button[type=submit]")
    error = page.locator("#file-field .error[role=alert]")
    error.wait_for()
    assert "The CSV has a header but no data rows." in error.inner_text()
    assert page.url.endswith("/datasets/upload/") and not Dataset.objects.exists()
    assert page.is_enabled("#upload-form button[type=submit]")

    rows = "".join(f"{i},{i % 3}\n" for i in range(30))
    drop("dropped.csv", "x,label\n" + rows)
    assert page.locator("#file-field .error").count() == 0  # a new file clears the old message
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(DATASET_PAGE)
    dataset = Dataset.objects.get()
    assert dataset.name == "dropped.csv" and dataset.rows == 30
    assert page.inner_text("#dataset-rows") == "30"
