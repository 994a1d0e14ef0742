"""The dashboard's browser tests: one real `chowder serve` (dev model, so chat needs no provider key) and one
headless Chromium for the module, and ONE instance created through the page and shared by every test (a gateway
takes ~1.1 GiB and 20-35 s to boot); deleted by the last test, or at teardown whatever happened."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import release_networks_below, unmount_below
from tests.e2e.harness import BOOT_TIMEOUT_S, Server, destroy_sandboxes, require_runtime
from tests.factories import auth, signup
from tests.web.browser import Browser, chromium, require_chromium

pytestmark = pytest.mark.e2e


@dataclass
class Dashboard:
    server: Server
    browser: Browser
    org_key: str
    data_dir: Path
    instance_id: str = ""
    # What the instances list showed while the instance booted (status cell texts, in order, deduplicated).
    progress: list[str] = field(default_factory=list)

    def sign_in(self, key: str, instance_ids: str = "") -> None:
        b = self.browser
        b.open("#/signin")
        b.fill("API key", key)
        b.fill("Instance IDs (scoped keys only)", instance_ids)
        b.click("Sign in")

    def as_org(self) -> None:
        """Signed in with the org key (whatever an earlier test left), on the instances page."""
        b = self.browser
        if b.driver.execute_script("return sessionStorage.getItem('chowder.key')") != self.org_key:
            self.sign_in(self.org_key)
        b.open("#/instances")
        b.wait_text("main h1", "Instances")

    def sign_out(self) -> None:
        self.browser.click("Sign out", within="#nav")
        self.browser.wait_text("main h1", "Sign in")


@pytest.fixture(scope="module")
def dashboard() -> Iterator[Dashboard]:
    require_chromium()
    require_runtime()
    data_dir = Path(tempfile.mkdtemp(prefix="chowder-web-", dir="/tmp"))  # 0700
    server = Server(data_dir, f"sqlite:///{data_dir / 'chowder.db'}", CHOWDER_DEV_MODEL="1")
    try:
        server.start()
        key = signup(server.client, "Dashboard Co", model_keys={})
        with chromium(server.url) as browser:
            env = Dashboard(server, browser, key, data_dir)
            yield env
            if env.instance_id:
                server.client.delete(f"/v1/instances/{env.instance_id}", headers=auth(key))
    finally:
        server.stop()
        destroy_sandboxes(data_dir)
        release_networks_below(data_dir)
        unmount_below(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def running(dashboard: Dashboard) -> Dashboard:
    """Signed in with the org key, one instance created through the page and watched until the list says running."""
    b = dashboard.browser
    dashboard.sign_in(dashboard.org_key)
    b.wait_text("main h1", "Instances")
    b.fill("Name", "web-agent")
    b.click("Create instance")
    row = "tr[data-instance]"
    dashboard.instance_id = b.one(row).get_attribute("data-instance") or ""
    assert dashboard.instance_id

    def booted() -> bool:
        text = b.text_of(row)
        if not dashboard.progress or dashboard.progress[-1] != text:
            dashboard.progress.append(text)
        if "provisioning" in text and "screenshot" not in dashboard.__dict__:
            b.screenshot("instances-provisioning")
            dashboard.__dict__["screenshot"] = True
        return "running" in text or "error" in text

    b.wait("the instance to boot", booted, timeout_s=BOOT_TIMEOUT_S)
    assert "running" in b.text_of(row), dashboard.progress[-1] + "\n" + dashboard.server.log_text()[-3000:]
    return dashboard
