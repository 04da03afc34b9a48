"""Dashboard sessions expire; login links work once; CSRF tokens are per session."""

from __future__ import annotations

from moor.web.ui.access import Person
from moor.web.ui.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_its_lifetime_and_when_idle() -> None:
    clock = Clock()
    store = SessionStore(lifetime=100, idle=30, clock=clock)
    session = store.open(Person("ada"))
    clock.now += 20
    assert store.find(session.id) is session
    clock.now += 31
    assert store.find(session.id) is None, "idle too long"
    other = store.open(Person("bob"))
    for _ in range(5):
        clock.now += 25
        store.find(other.id)
    assert store.find(other.id) is None, "past its lifetime although in use"


def test_a_login_link_opens_one_session_once() -> None:
    clock = Clock()
    store = SessionStore(clock=clock)
    token = store.issue_login_token(Person("ada"))
    session = store.redeem_login_token(token)
    assert session is not None and session.person.username == "ada"
    assert store.redeem_login_token(token) is None
    assert store.redeem_login_token("guess") is None


def test_csrf_tokens_differ_per_session_and_are_checked() -> None:
    store = SessionStore()
    one, two = store.open(Person("ada")), store.open(Person("ada"))
    assert one.csrf != two.csrf and one.id != two.id
    assert one.csrf_matches(one.csrf) and not one.csrf_matches(two.csrf) and not one.csrf_matches("")
