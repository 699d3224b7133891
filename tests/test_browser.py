"""The Dagster UI in a real browser (headless Debian Chromium through Selenium and chromedriver).

Opens the asset graph, a partitioned asset's partitions page and its checks page on the
server of tests/ui_server.py (after two videos went through), asserts what a person
would look for, and saves screenshots under test-output/screenshots/.
`FVC_UPDATE_DOCS_SCREENSHOTS=1` also writes small copies to docs/screenshots/ for the UI tour (docs/ui-tour.md;
the README shows the asset graph).
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.ui_server import REPO_ROOT, TEST_OUTPUT, ui_server  # noqa: F401 (ui_server is a fixture)

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]' (selenium)")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = TEST_OUTPUT / "screenshots"
DOCS_SHOTS = REPO_ROOT / "docs" / "screenshots"
PAGE_TIMEOUT_S = 90  # the first page load compiles nothing, but the UI fetches a lot on a busy machine


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/install-system-deps.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver) -> str:
    # Every text node, SVG included (the asset graph draws its labels inside the SVG); cheap, unlike page_source.
    return driver.execute_script("return document.body ? document.body.textContent : ''") or ""


def open_and_wait(driver, url: str, expected: list[str], what: str) -> str:
    driver.get(url)
    try:
        WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=1).until(
            lambda d: (lambda text: all(t in text for t in expected))(page_text(d)))
        dismiss_community_modal(driver)
    except TimeoutException:
        save(driver, f"failed-{what}")
        missing = [t for t in expected if t not in page_text(driver)]
        pytest.fail(f"{what}: {url} never showed {missing} (screenshot in {SHOTS})")
    return driver.find_element(By.TAG_NAME, "body").text


def dismiss_community_modal(driver) -> None:
    """A fresh browser profile gets Dagster's "Join the community" dialog once; a person clicks Skip."""
    for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        button.click()
        WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.XPATH, "//button[normalize-space()='Skip']"))


def save(driver, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    if os.environ.get("FVC_UPDATE_DOCS_SCREENSHOTS") == "1":
        shrink(path, DOCS_SHOTS / f"{name}.png")
    return path


def shrink(src: Path, dst: Path, width: int = 1100) -> None:
    """A copy small enough for the repository: narrower, 128-colour palette."""
    from PIL import Image  # noqa: PLC0415

    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as image:
        image = image.convert("RGB")
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


def test_asset_graph_lists_groups_and_assets(browser, ui_server):
    # The global lineage folds the six groups; each group's page draws its assets.
    open_and_wait(browser, f"{ui_server.url}/asset-groups",
                  ["ingest", "augment", "features", "scale", "train", "promote"], "global asset graph")
    open_and_wait(browser, f"{ui_server.url}/locations/fvc/asset-groups/train",
                  ["video_catalog", "folds", "fold_results", "model_comparison"], "train group graph")
    path = save(browser, "asset-graph")
    assert path.stat().st_size > 10_000  # a blank page compresses to almost nothing


def test_partitions_page_shows_the_landed_videos(browser, ui_server):
    keys = ui_server.video_keys
    text = open_and_wait(browser, f"{ui_server.url}/assets/augmented_videos?view=partitions",
                         ["augmented_videos", *keys], "partitions page")
    assert "2 partitions" in text or "Materialized" in text or "materialized" in text.lower()
    # Select one partition: its materialisation (with the contact sheet) shows beside the list.
    open_and_wait(browser, f"{ui_server.url}/assets/augmented_videos?view=partitions&partition={keys[0]}",
                  [keys[0], "contact_sheet"], "partition detail")
    save(browser, "partitions")


def test_asset_page_shows_declared_columns_and_the_row_count(browser, ui_server):
    # The columns come from the definition (not repeated in every materialisation), the row count from
    # the latest materialisation: a person sees both on the asset's overview.
    open_and_wait(browser, f"{ui_server.url}/assets/augmented_videos?view=overview",
                  ["augmented_videos", "clip_id", "augmentation_idx", "dup_group", "Row count"], "asset overview")
    save(browser, "asset-overview")


def test_checks_page_lists_checks(browser, ui_server):
    # Partitioned check specs: the latest result per partition shows, not "Not evaluated".
    text = open_and_wait(browser, f"{ui_server.url}/assets/scaled_videos?view=checks",
                         ["scaled_complete", "autoencoder_fallbacks", "Clips that fell back", "Succeeded"],
                         "checks page")
    assert "not evaluated" not in text.lower(), text[:2000]
    save(browser, "checks")


def test_failed_leakage_check_is_visible(browser, ui_server):
    # The blocking leakage check failed (two videos cannot fill five folds): the UI says so, with its metadata.
    text = open_and_wait(browser, f"{ui_server.url}/assets/folds?view=checks", ["no_leakage", "Failed"], "folds checks")
    assert "problems" in text, text[:2000]
    save(browser, "leakage-check")
