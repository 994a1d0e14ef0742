"""Headless Chromium from Debian's packages (`chromium`, `chromium-driver`) driven by Selenium, with the helpers the
dashboard's tests share: waiting for text, clicking by label, screenshots as artifacts, the page's console errors."""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = os.environ.get("CHOWDER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHOWDER_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("CHOWDER_TEST_ARTIFACTS", "/tmp/chowder-ui-screenshots"))

T = TypeVar("T")


def require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not (os.access(path, os.X_OK) or shutil.which(path))]
    if missing:
        pytest.skip(
            f"browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
            "apt-get install -y chromium chromium-driver (./dev test installs them)"
        )


class Browser:
    """One Chromium; `downloads` is where the files it saves land."""

    def __init__(self, driver: webdriver.Chrome, downloads: Path, base_url: str) -> None:
        self.driver = driver
        self.downloads = downloads
        self.base_url = base_url

    def open(self, fragment: str = "") -> None:
        self.driver.get(f"{self.base_url}/ui/{fragment}")

    def wait(self, what: str, condition: Callable[[], T | None], timeout_s: float = 20.0) -> T:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                result = condition()
            except (StaleElementReferenceException, WebDriverException) as err:
                if "no such window" in str(err):
                    raise
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                self.screenshot(f"timeout-{what[:40].replace(' ', '-')}")
                body = self.driver.find_element(By.TAG_NAME, "body").text
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; page:\n{body[-3000:]}")
            time.sleep(0.2)

    def text_of(self, css: str) -> str:
        return "\n".join(el.text for el in self.driver.find_elements(By.CSS_SELECTOR, css))

    def wait_text(self, css: str, text: str, timeout_s: float = 20.0) -> str:
        def found() -> str | None:
            seen = self.text_of(css)
            return seen if text in seen else None

        return self.wait(f"{text!r} in {css}", found, timeout_s)

    def one(self, css: str, timeout_s: float = 20.0) -> WebElement:
        return self.wait(f"element {css}", lambda: next(iter(self.visible(css)), None), timeout_s)

    def visible(self, css: str) -> list[WebElement]:
        return [el for el in self.driver.find_elements(By.CSS_SELECTOR, css) if el.is_displayed()]

    def field(self, label: str, timeout_s: float = 20.0) -> WebElement:
        """The control a visible <label> names (as a screen reader finds it)."""

        def find() -> WebElement | None:
            for el in self.driver.find_elements(By.XPATH, f"//label[normalize-space()={_xpath_literal(label)}]"):
                if el.is_displayed() and (target := el.get_attribute("for")):
                    return self.driver.find_element(By.ID, target)
            return None

        return self.wait(f"field labelled {label!r}", find, timeout_s)

    def fill(self, label: str, value: str) -> None:
        control = self.field(label)
        control.clear()
        control.send_keys(value)

    def button(self, name: str, within: str = "body", timeout_s: float = 20.0) -> WebElement:
        """An enabled button whose accessible name (aria-label, else its text) is `name`."""

        def find() -> WebElement | None:
            for el in self.driver.find_elements(By.CSS_SELECTOR, f"{within} button"):
                accessible = el.get_attribute("aria-label") or el.text
                if accessible.strip() == name and el.is_displayed() and el.is_enabled():
                    return el
            return None

        return self.wait(f"button {name!r}", find, timeout_s)

    def click(self, name: str, within: str = "body", timeout_s: float = 20.0) -> None:
        self.button(name, within, timeout_s).click()

    def screenshot(self, name: str) -> Path:
        """The whole page, not only what the window shows."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        # The window's width: captured beyond the viewport, the page is laid out without its scrollbar.
        width = max(size["width"], self.driver.execute_script("return window.innerWidth"))
        clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def console_errors(self) -> list[str]:
        """Severe console entries since the last call (script errors, CSP refusals), not failed API calls the page
        handled (HTTP errors are logged by the browser as resource failures)."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        return [
            e["message"]
            for e in entries
            if e.get("level") == "SEVERE" and "Failed to load resource" not in e["message"]
        ]


def _xpath_literal(text: str) -> str:
    return f'"{text}"' if '"' not in text else "concat('" + text.replace("'", "',\"'\",'") + "')"


@contextmanager
def chromium(base_url: str, width: int = 1280, height: int = 900) -> Iterator[Browser]:
    require_chromium()
    profile = Path(tempfile.mkdtemp(prefix="chowder-chromium-", dir="/tmp"))
    downloads = profile / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # as root in CI; the page under test is our own
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile / 'profile'}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield Browser(driver, downloads, base_url)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
