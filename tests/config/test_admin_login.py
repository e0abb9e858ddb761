"""The admin login is throttled: five wrong passwords in a row lock that username from
that address, and then even the right password is refused until the cool-off ends."""

import pytest
from django.contrib.auth.models import User

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff_user(db):
    return User.objects.create_user("ops", password="right-horse-battery", is_staff=True, is_superuser=True)


def _login(client, password: str, address: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": "ops", "password": password}, REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_the_login_even_against_the_right_one(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "wrong").status_code == 200  # the form again, with its error

    locked = _login(client, "wrong")
    assert locked.status_code == 429
    assert _login(client, "right-horse-battery").status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_address_and_a_success_resets_the_count(client, staff_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "wrong", address="10.0.0.1")

    elsewhere = _login(client, "right-horse-battery", address="10.0.0.2")
    assert elsewhere.status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "wrong", address="10.0.0.2")
    assert _login(client, "right-horse-battery", address="10.0.0.2").status_code == 302
