"""The dashboard in headless Chromium against a real server and a real gateway (dev model): sign in, create an
instance and watch it boot, chat with streamed answers, files up and down, scoped keys made, used and revoked,
delete with confirmation. The tests run in order on one shared instance (see conftest.py); screenshots of the
main pages land in $CHOWDER_TEST_ARTIFACTS (default /tmp/chowder-ui-screenshots)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from chowder.domain.models import Desired, Status
from chowder.persistence.db import Database
from chowder.persistence.store import SqlTransactions
from tests.factories import add_instance_of, auth
from tests.web.browser import Browser
from tests.web.conftest import Dashboard

pytestmark = pytest.mark.e2e

CLAUDE = "claude-sonnet-4-20250514"
# Each call the page makes, recorded in the page: what it sent and what came back (content type, status).
RECORD_FETCHES = """
window.calls = [];
const original = window.fetch;
window.fetch = async (url, init = {}) => {
  const body = typeof init.body === 'string' ? init.body : null;
  const call = { url: String(url), method: init.method || 'GET', body };
  window.calls.push(call);
  const response = await original(url, init);
  call.status = response.status;
  call.type = response.headers.get('content-type');
  return response;
};
"""


def calls(b: Browser) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = b.driver.execute_script("return window.calls || []")
    return found


def test_a_wrong_key_is_refused_and_nothing_is_kept(dashboard: Dashboard) -> None:
    b = dashboard.browser
    dashboard.sign_in("chd_org_" + "0" * 64)
    b.wait_text("main", "This key is not accepted.")
    assert b.driver.execute_script("return sessionStorage.getItem('chowder.key')") is None
    assert b.console_errors() == []


def test_sign_up_in_the_page_shows_the_key_once_and_signs_in(dashboard: Dashboard) -> None:
    b = dashboard.browser
    b.open("#/signin")
    b.one("details.signup summary").click()
    b.fill("Organization name", "Signed Up Ltd")
    b.click("Create organization")
    key = b.one("#new-org-key").text
    assert key.startswith("chd_org_") and len(key) == 72
    org = dashboard.server.client.get("/v1/organization", headers=auth(key)).json()
    assert org["name"] == "Signed Up Ltd"
    b.click("Continue signed in")
    b.wait_text("main", "No instances yet")
    assert b.driver.execute_script("return sessionStorage.getItem('chowder.key')") == key
    dashboard.sign_out()
    assert b.driver.execute_script("return sessionStorage.getItem('chowder.key')") is None
    assert b.console_errors() == []


def test_create_an_instance_and_watch_it_boot(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    booting = [text for text in running.progress if "provisioning" in text]
    assert booting, running.progress
    # The list showed the provisioning step with its elapsed time, updated while it booted.
    assert any(re.search(r"booting the gateway · \d+ s", text) for text in booting), booting
    seconds = {m.group(1) for text in booting if (m := re.search(r"· (\d+) s", text))}
    assert len(seconds) > 1, booting
    # The key stays in this tab's session storage only.
    assert b.driver.execute_script("return sessionStorage.getItem('chowder.key')") == running.org_key
    assert b.driver.execute_script("return localStorage.length") == 0
    body = running.server.client.get(f"/v1/instances/{running.instance_id}", headers=auth(running.org_key)).json()
    assert body["status"] == "running" and body["name"] == "web-agent"
    b.screenshot("instances")
    assert b.console_errors() == []


def test_chat_streams_the_answer_and_keeps_sessions_apart(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.open(f"#/instances/{running.instance_id}/chat")
    b.wait_text("main h1", "web-agent")
    b.driver.execute_script(RECORD_FETCHES)
    b.fill("Message", "hello dashboard")
    b.field("Message").send_keys(Keys.ENTER)  # Enter sends
    answer = b.wait_text(".msg.assistant .text", "last=hello dashboard", timeout_s=120)
    assert f"ECHO[{CLAUDE}] turns=1" in answer
    b.wait_text(".chat-state", "Answer complete.")
    assert "tokens in" in b.text_of(".msg.assistant small")
    turn = [c for c in calls(b) if c["url"].endswith("/responses")]
    assert len(turn) == 1
    assert json.loads(turn[0]["body"]) == {"model": CLAUDE, "input": "hello dashboard", "stream": True}
    assert turn[0]["status"] == 200 and turn[0]["type"].startswith("text/event-stream")
    b.screenshot("chat")

    b.fill("New session", "support-1")
    b.click("Open")
    b.fill("Message", "second question")
    b.click("Send")
    answer = b.wait_text(".msg.assistant .text", "last=second question", timeout_s=120)
    assert "turns=1" in answer, "a new session starts its own conversation"
    turns = [c["url"] for c in calls(b) if c["url"].endswith("/responses")]
    assert turns[-1].endswith(f"/v1/instances/{running.instance_id}/session/support-1/responses"), turns
    b.wait_text(".chat-state", "Answer complete.")
    # Back to main: its transcript is still there, and the next turn continues it.
    Select(b.field("Session")).select_by_value("main")
    b.wait_text(".transcript", "hello dashboard")
    assert "second question" not in b.text_of(".transcript")
    b.fill("Message", "third")
    b.click("Send")
    assert "turns=2" in b.wait_text(".msg.assistant:last-child .text", "last=third", timeout_s=120)
    assert b.console_errors() == []


def test_upload_view_and_download_a_file(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.open(f"#/instances/{running.instance_id}/files")
    b.wait_text(".files nav", "workspace")
    # A hostile name and content: both must stay text.
    name = '<img src=x onerror="window.pwned=1">.txt'
    content = b"<script>window.pwned = 2</script>\nsecond line \xc3\xa9\n"
    local = Path(tempfile.mkdtemp(prefix="chowder-upload-", dir="/tmp")) / name
    local.write_bytes(content)
    b.field("Upload into this folder").send_keys(str(local))
    b.click("Upload")
    b.wait_text(".files", f"Uploaded workspace/{name}.")
    row = b.one(f'tr[data-path="workspace/{name.replace(chr(34), chr(92) + chr(34))}"]')
    assert name in row.text
    stored = running.server.client.get(
        f"/v1/instances/{running.instance_id}/files/content",
        params={"path": f"workspace/{name}"},
        headers=auth(running.org_key),
    )
    assert stored.status_code == 200 and stored.json()["content"] == content.decode()

    b.click(f"View {name}")
    assert b.wait_text(".viewer pre", "second line é") == content.decode().rstrip("\n")
    b.click(f"Download {name}")
    saved = b.wait("the download", lambda: [p for p in b.downloads.iterdir() if not p.name.endswith(".crdownload")], 30)
    assert saved[0].read_bytes() == content
    assert b.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    assert b.driver.execute_script("return window.pwned") is None
    b.screenshot("files")
    assert b.console_errors() == []


def test_usage_shows_sessions_and_models_as_bars(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.open(f"#/instances/{running.instance_id}/usage")
    b.wait_text(".usage", "Tokens per model")
    assert CLAUDE in b.text_of(".usage table")
    assert "main" in b.text_of(".usage table") and "support-1" in b.text_of(".usage table")
    assert len(b.driver.find_elements(By.CSS_SELECTOR, ".chart svg rect.bar")) >= 3
    b.screenshot("usage")


def test_channels_show_their_setup_fields_and_skills_load(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.open(f"#/instances/{running.instance_id}/channels")
    b.wait_text('tr[data-channel="telegram"]', "off")
    assert "interactive" in b.text_of('tr[data-channel="whatsapp"]')
    b.click("Connect slack")
    # The form asks for what the channel's info endpoint names, each described.
    assert b.field("bot_token").get_attribute("type") == "password"
    assert b.field("app_token").get_attribute("aria-describedby")
    assert "Your Slack app-level token" in b.text_of(".channel-detail")
    b.click("Status of telegram")
    b.wait_text(".channel-detail", "Enabled: no")
    b.screenshot("channels")
    b.open(f"#/instances/{running.instance_id}/skills")
    b.wait("the skills to load", lambda: "Loading skills" not in b.text_of(".tab-panel"), timeout_s=60)
    assert b.visible(".tab-panel .error") == [], b.text_of(".tab-panel")
    assert b.visible(".tab-panel tbody tr")
    b.screenshot("skills")
    assert b.console_errors() == []


def test_organization_page_shows_the_plan(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.open("#/organization")
    b.wait_text("#tier", "shrimp")
    page = b.text_of("main")
    assert "1 of 1" in page and "Billing is not configured on this server." in page
    assert "built-in dev model" in page and "Dashboard Co" in page
    assert b.visible("main button") == [b.button("Save key")], "no checkout or portal button without billing"
    b.screenshot("organization")


def test_a_scoped_key_made_in_the_page_sees_only_its_instance_until_revoked(running: Dashboard) -> None:
    b, server = running.browser, running.server
    running.as_org()
    org_id = server.client.get("/v1/organization", headers=auth(running.org_key)).json()["id"]
    # A second instance of the org, stopped (made on the database: no second gateway boots).
    db = Database(server.env["CHOWDER_DATABASE_URL"])
    other = SqlTransactions(db).run_sync(
        lambda uow: add_instance_of(
            uow, org_id, name="other-agent", status=Status.STOPPED, desired_state=Desired.STOPPED
        )
    )
    db.dispose()

    b.open("#/keys")
    b.wait_text("main", "other-agent")
    b.fill("Name", "web-chat")
    b.driver.find_element(By.CSS_SELECTOR, f'input[name=instance][value="{running.instance_id}"]').click()
    b.driver.find_element(By.CSS_SELECTOR, "input[name=permission][value=files]").click()
    b.click("Create key")
    raw = b.one("#raw-key").text
    assert raw.startswith("chd_sk_") and len(raw) == 71
    b.wait_text("tbody", "web-chat")
    b.click("Details of web-chat")
    b.wait_text("main", "web-agent: read, interact, files")
    b.screenshot("keys")

    running.sign_out()
    running.sign_in(raw, f"{running.instance_id} {other}")
    b.wait_text("main h1", "Instances")
    rows = b.wait("the scoped key's list", lambda: b.visible("tr[data-instance]"))
    assert [r.get_attribute("data-instance") for r in rows] == [running.instance_id]
    assert f"Not reachable with this key: {other}" in b.text_of("main")
    assert b.text_of("#nav").split() == ["Instances", "Sign", "out"]
    assert b.visible("tr[data-instance] button") == [], "no start, stop or delete for a scoped key"
    b.screenshot("scoped-key")
    # What it was not granted answers 403, shown as such; what it was granted works.
    b.open(f"#/instances/{running.instance_id}/channels")
    b.wait_text("main", "lacks the 'channels' permission")
    b.open(f"#/instances/{running.instance_id}/files")
    b.wait_text(".files tbody", ".txt")
    b.open("#/keys")  # an org page: not there for this key
    b.wait_text("main h1", "Instances")

    running.sign_out()
    running.sign_in(running.org_key)
    b.wait_text("main", "other-agent")  # the org key sees both
    b.open("#/keys")
    b.click("Revoke web-chat")
    b.click("Revoke key", within="dialog")
    b.wait_text("tbody", "revoked or expired")
    response = server.client.get(f"/v1/instances/{running.instance_id}", headers=auth(raw))
    assert response.status_code == 401
    running.sign_out()
    running.sign_in(raw, running.instance_id)
    b.wait_text("main", "This key is not accepted.")
    assert b.console_errors() == []
    running.sign_in(running.org_key)
    b.wait_text("main h1", "Instances")
    assert server.client.delete(f"/v1/instances/{other}", headers=auth(running.org_key)).status_code == 204


def test_readable_on_a_phone(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.driver.set_window_size(390, 844)
    try:
        pages = (("#/instances", "phone-instances"), (f"#/instances/{running.instance_id}/chat", "phone-chat"))
        for page, name in pages:
            b.open(page)
            b.wait_text("main", "web-agent")
            root = "document.documentElement"
            overflow = b.driver.execute_script(f"return {root}.scrollWidth - {root}.clientWidth")
            assert overflow <= 0, f"{page} scrolls sideways by {overflow}px"
            b.screenshot(name)
    finally:
        b.driver.set_window_size(1280, 900)


def test_stop_then_start_with_progress_shown(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.open(f"#/instances/{running.instance_id}/files")
    b.wait_text(".instance-status", "running")
    b.click("Stop web-agent")
    b.wait_text(".instance-status", "stopped", timeout_s=120)
    b.wait_text(".tab-panel", "The instance is stopped; files needs it running.")
    b.click("Start web-agent")
    shown: list[str] = []

    def started() -> bool:
        shown.append(b.text_of(".instance-status"))
        return shown[-1].startswith("running") and "Starting" not in shown[-1]

    b.wait("the instance to run again", started, timeout_s=300)
    assert any(re.search(r"Starting · \d+ s", text) for text in shown), shown
    # The tab comes back by itself, and the file uploaded before the stop is still there.
    b.wait_text(".files tbody", ".txt", timeout_s=30)
    assert b.console_errors() == []


def test_delete_asks_first_then_the_instance_is_gone(running: Dashboard) -> None:
    b = running.browser
    running.as_org()
    b.open("#/instances")
    b.wait_text("tbody", "web-agent")
    b.click("Delete web-agent")
    b.click("Cancel", within="dialog")
    assert b.visible("dialog") == []
    still = running.server.client.get(f"/v1/instances/{running.instance_id}", headers=auth(running.org_key))
    assert still.status_code == 200
    b.click("Delete web-agent")
    b.screenshot("delete-confirmation")
    b.click("Delete instance", within="dialog")
    row = f'tr[data-instance="{running.instance_id}"]'
    b.wait("the row to go", lambda: b.driver.find_elements(By.CSS_SELECTOR, row) == [])
    assert b.visible(".empty"), "the list says it is empty"
    response = running.server.client.get(f"/v1/instances/{running.instance_id}", headers=auth(running.org_key))
    assert response.status_code == 404
    running.instance_id = ""
    assert b.console_errors() == []
