"""The admin in a real browser: headless Chromium, driven by Selenium, against the live
server. A staff member logs in, finds a message by its number and by its provider id,
reads a conversation as its thread, and replays a dead letter with the admin action.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
the test is skipped locally, and fails in CI, where it must run."""

import os
import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation
from messaging.models import Message, MessageEvent
from tests.factories import AccountFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# The machine has no internet: no first-run, sync, component or network side trips.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]
WAIT_SECONDS = 20


@pytest.fixture
def browser(tmp_path):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        reason = f"{' and '.join(missing)} not found: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI; {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


class AdminPages:
    """The few things a staff member does, in the browser's terms."""

    def __init__(self, driver, base_url: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.driver, self.base_url, self.by = driver, base_url, By
        self.wait = WebDriverWait(driver, WAIT_SECONDS)
        self.expected, self.select = expected_conditions, Select

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str):
        return self.wait.until(self.expected.presence_of_element_located((self.by.CSS_SELECTOR, css)))

    def find_all(self, css: str) -> list:
        return self.driver.find_elements(self.by.CSS_SELECTOR, css)

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/?next=/admin/")
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.find("input[type=submit]").click()
        self.wait.until(self.expected.title_contains("Site administration"))

    def search_messages(self, term: str) -> list[str]:
        """The ids of the rows the message list shows for `term`."""
        self.open("/admin/messaging/message/")
        box = self.find("#searchbar")
        box.clear()
        box.send_keys(term)
        box.submit()
        self.wait.until(lambda d: "q=" in d.current_url)
        return [box.get_attribute("value") for box in self.find_all("#result_list input.action-select")]

    def success_messages(self) -> list[str]:
        return [li.text for li in self.find_all("ul.messagelist li")]


@pytest.fixture
def staff_pages(browser, live_server, transactional_db, django_user_model):
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a-staff-password")
    pages = AdminPages(browser, live_server.url)
    pages.log_in("staff", "a-staff-password")
    return pages


@pytest.fixture
def thread() -> tuple[Conversation, list[Message]]:
    """A thread whose row order is not its time order: the late-arriving inbound
    message was written last but happened first."""
    account = AccountFactory(name="Acme")
    conversation = ConversationFactory(account=account, a="+12015550100", b="+18045550199")
    start = timezone.now() - timedelta(minutes=10)
    outbound = MessageFactory(
        conversation=conversation,
        body="Your order is ready for pickup.",
        status=Message.Status.DELIVERED,
        provider="twilio",
        provider_message_id="SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        created_at=start + timedelta(minutes=2),
    )
    dead = MessageFactory(
        conversation=conversation,
        type=Message.Type.MMS,
        body="Here is your <b>receipt</b>.",
        attachments=["https://cdn.example.com/receipt.png"],
        status=Message.Status.FAILED,
        failure_reason="exhausted",
        attempts=6,
        provider="twilio",
        last_error="HTTP 500 from the provider",
        created_at=start + timedelta(minutes=3),
        failed_at=start + timedelta(minutes=4),
    )
    inbound = MessageFactory(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        from_address="+18045550199",
        to_address="+12015550100",
        body="Is my order ready?",
        status=Message.Status.RECEIVED,
        provider="twilio",
        provider_message_id="SMffeeddccbbaa99887766554433221100",
        created_at=start,
    )
    return conversation, [inbound, outbound, dead]


def test_staff_find_a_message_read_its_thread_and_replay_a_dead_letter(staff_pages, thread):
    pages = staff_pages
    conversation, (inbound, outbound, dead) = thread

    # Found by its number, and by its provider id.
    assert pages.search_messages(f"#{outbound.pk}") == [str(outbound.pk)]
    assert pages.search_messages(outbound.provider_message_id) == [str(outbound.pk)]

    # From the message, to its conversation: the thread in time order.
    pages.find(f'#result_list a[href$="/conversations/conversation/{conversation.pk}/change/"]').click()
    pages.find("#thread")
    shown = [li.get_attribute("data-message-id") for li in pages.find_all("#thread li.thread-message")]
    assert shown == [str(inbound.pk), str(outbound.pk), str(dead.pk)]
    first, _, last = pages.find_all("#thread li.thread-message")
    assert "inbound" in first.get_attribute("class") and "Is my order ready?" in first.text
    assert "outbound" in last.get_attribute("class") and "failed" in last.text
    # The HTML in a body is shown as text, not rendered.
    assert last.find_element(pages.by.CSS_SELECTOR, ".body").text == "Here is your <b>receipt</b>."
    assert not last.find_elements(pages.by.CSS_SELECTOR, ".body b")
    link = last.find_element(pages.by.CSS_SELECTOR, ".attachments a")
    assert link.get_attribute("href") == "https://cdn.example.com/receipt.png"

    # The dead letter, from the dead-letter filter, replayed with the admin action.
    pages.open("/admin/messaging/message/")
    pages.find("#changelist-filter a[href*='dead_letter=all']").click()
    pages.wait.until(lambda d: "dead_letter=all" in d.current_url)
    rows = [box.get_attribute("value") for box in pages.find_all("#result_list input.action-select")]
    assert rows == [str(dead.pk)]
    pages.find(f"#result_list input.action-select[value='{dead.pk}']").click()
    pages.select(pages.find("select[name=action]")).select_by_value("replay")
    pages.find("button[name=index]").click()
    pages.wait.until(lambda d: pages.success_messages())
    assert "Re-queued 1 failed message(s)." in pages.success_messages()

    dead.refresh_from_db()
    assert dead.status == Message.Status.QUEUED
    assert dead.attempts == 0 and dead.failure_reason == ""
    replay = MessageEvent.objects.get(message=dead, kind=MessageEvent.Kind.REPLAY)
    assert replay.detail["actor"] == "admin:staff"

    # And the message page tells what happened to it.
    pages.open(f"/admin/messaging/message/{dead.pk}/change/")
    timeline = pages.find("#events-group").text
    assert "replay" in timeline.lower() and "admin:staff" in timeline
    assert not pages.find_all("#replay-message")  # no longer a dead letter
