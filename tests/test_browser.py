"""The page in a real headless Chromium: upload (ready), probe warnings, preview before the
start with the split slider, start, progress to 100 %, download.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make setup`` installs them).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from media import h264_excerpt
from server_process import ServerProcess

from vx_engine.pipeline.ffmpeg.fields import DEINTERLACE_CHOICES, IVTC_CHOICES
from vx_engine.samples import sample_video

CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "browser-token-9c2e"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("chromium") and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver: "
        "apt-get install -y chromium chromium-driver",
    ),
]


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1300",
        # no network beyond loopback: /docs must render from the server's own files
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",  # and no proxy route out either
        "--proxy-bypass-list=127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def after_clip_percent(driver) -> float:
    clip_path = driver.execute_script(
        "return getComputedStyle(document.getElementById('after')).clipPath"
    )
    return float(re.search(r"inset\(0(?:px)? 0(?:px)? 0(?:px)? ([\d.]+)%", clip_path).group(1))


def test_page_upload_progress_preview_slider(tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    clip = h264_excerpt(sample_video("bikes.mp4"), tmp_path / "bikes.mp4", 24, 320, 136)
    with ServerProcess(tmp_path / "data", token=TOKEN) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 300, poll_frequency=0.2)
        sr = Select(browser.find_element(By.ID, "sr"))
        assert [o.text for o in sr.options] == ["none"]  # the API refuses us without a token
        assert "token" in browser.find_element(By.ID, "message").text.lower()

        browser.find_element(By.ID, "token").send_keys(TOKEN, Keys.TAB)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "sr")).options) > 1)
        offered = [
            o.get_attribute("value") for o in Select(browser.find_element(By.ID, "sr")).options
        ]
        assert (
            "realesr-animevideov3-x2+realcugan-pro-x2-conservative" in offered
        )  # a measured blend
        Select(browser.find_element(By.ID, "sr")).select_by_value("realesr-animevideov3-x2")
        browser.find_element(By.ID, "file").send_keys(str(clip))
        browser.find_element(By.ID, "upload").click()

        # the probe's warnings right after the upload: 136 lines is below 240p
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#warnings li.warn"))
        codes = [
            e.get_attribute("data-code")
            for e in browser.find_elements(By.CSS_SELECTOR, "#warnings li.warn")
        ]
        assert "low-resolution" in codes, codes
        assert "below 240p" in browser.find_element(By.ID, "warnings").text
        job_id = browser.execute_script("return state.jobId")
        with server.client() as client:
            assert client.get(f"/api/jobs/{job_id}").json()["state"] == "ready"

        # preview before the start, with a setting changed after the upload (no re-upload)
        Select(browser.find_element(By.ID, "baseline")).select_by_value("lanczos")
        browser.find_element(By.ID, "preview").click()
        wait.until(
            lambda d: d.execute_script(
                "const a = document.getElementById('after'), b = document.getElementById('before');"
                "return a.complete && b.complete && a.naturalWidth > 0 && b.naturalWidth > 0"
            )
        )
        sizes = browser.execute_script(
            "const a = document.getElementById('after'), b = document.getElementById('before');"
            "return [a.naturalWidth, a.naturalHeight, b.naturalWidth, b.naturalHeight]"
        )
        assert sizes == [640, 272, 640, 272]
        assert "before = lanczos" in browser.find_element(By.ID, "message").text
        assert after_clip_percent(browser) == pytest.approx(50)
        with server.client() as client:
            job = client.get(f"/api/jobs/{job_id}").json()
        assert job["state"] == "ready"

        slider = browser.find_element(By.ID, "split")
        # A real drag: press on the thumb (the middle) and move left by 30 % of the track.
        ActionChains(browser).click_and_hold(slider).move_by_offset(
            -int(slider.size["width"] * 0.3), 0
        ).release().perform()
        moved_to = float(slider.get_attribute("value"))
        assert 10 <= moved_to <= 30
        assert after_clip_percent(browser) == pytest.approx(moved_to)

        ARTIFACTS.mkdir(exist_ok=True)
        for screenshot in (ARTIFACTS / "browser-preview.png", Path("/tmp/vx-browser-preview.png")):
            browser.find_element(By.TAG_NAME, "body").screenshot(str(screenshot))
            assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # the run's field settings, as the flag table has them (DEINTERLACE_CHOICES...)
        for key, choices in (("deinterlace", DEINTERLACE_CHOICES), ("ivtc", IVTC_CHOICES)):
            select = Select(browser.find_element(By.ID, key))
            assert [o.get_attribute("value") for o in select.options] == list(choices)
        Select(browser.find_element(By.ID, "deinterlace")).select_by_value("yadif")
        Select(browser.find_element(By.ID, "ivtc")).select_by_value("off")
        browser.find_element(By.ID, "start").click()
        wait.until(lambda d: d.find_element(By.ID, "progress-text").text.startswith("100%"))
        assert browser.find_element(By.ID, "bar").get_attribute("value") == "100"
        assert "done" in browser.find_element(By.ID, "progress-text").text
        download = wait.until(
            lambda d: (
                d.find_element(By.ID, "download").is_displayed()
                and d.find_element(By.ID, "download")
            )
        )
        assert download.get_attribute("href").startswith("blob:")  # fetched with the token
        with server.client() as client:
            jobs = client.get("/api/jobs").json()
        assert [j["id"] for j in jobs] == [job_id] and jobs[0]["state"] == "done"  # one upload
        assert (jobs[0]["settings"]["deinterlace"], jobs[0]["settings"]["ivtc"]) == ("yadif", "off")


def test_docs_render_offline(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with ServerProcess(tmp_path / "data") as server:
        browser.get(server.url + "/docs")
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)
        title = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"))
        assert title[0].text.startswith("vx-engine")
        # the operations were read from /openapi.json and drawn
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/api/jobs", "/api/jobs/{job_id}/preview"} <= paths, paths
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert loaded and all(url.startswith(server.url) for url in loaded), loaded
