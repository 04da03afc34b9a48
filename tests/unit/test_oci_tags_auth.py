"""What a token service's answer means, and how long a token is used before it is asked for again."""

from __future__ import annotations

from moor.source.oci.token import DEFAULT_EXPIRY, RENEW_EARLY, RegistryAuth, parse_token_answer


def test_a_token_answer_gives_the_token_and_its_lifetime() -> None:
    issued = parse_token_answer(b'{"token": "abc", "expires_in": 300}')
    assert issued is not None and (issued.token, issued.expires_in) == ("abc", 300.0)
    oauth = parse_token_answer(b'{"access_token": "xyz"}')
    assert oauth is not None and (oauth.token, oauth.expires_in) == ("xyz", DEFAULT_EXPIRY)


def test_garbage_is_no_token() -> None:
    for body in (b"<html>", b"[]", b'{"token": ""}', b'{"token": 5}', b"\xff"):
        assert parse_token_answer(body) is None
    weird = parse_token_answer(b'{"token": "t", "expires_in": true}')
    assert weird is not None and weird.expires_in == DEFAULT_EXPIRY


def test_a_token_is_used_until_shortly_before_it_expires_then_basic_again() -> None:
    now = [1000.0]
    auth = RegistryAuth(clock=lambda: now[0])
    auth.basic = "Basic b"
    auth.remember_token("repository:a:pull", "t", 60)
    assert auth.authorization("repository:a:pull") == "Bearer t"
    assert auth.authorization("repository:b:pull") == "Basic b"
    now[0] += 60 - RENEW_EARLY
    assert auth.authorization("repository:a:pull") == "Basic b"
