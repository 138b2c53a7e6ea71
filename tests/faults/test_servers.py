"""The fault suite's own servers do what the other fault tests rely on."""

from __future__ import annotations

import threading

import psycopg
import pytest
import redis


def test_proxy_forwards_drops_and_comes_back(pg_proxy) -> None:  # type: ignore[no-untyped-def]
    conn = psycopg.connect(pg_proxy.url, autocommit=True, connect_timeout=5)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    pg_proxy.drop()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    pg_proxy.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_proxy.url, connect_timeout=2)
    pg_proxy.start()
    with psycopg.connect(pg_proxy.url, autocommit=True, connect_timeout=5) as again:
        assert again.execute("SELECT 2").fetchone() == (2,)


def test_paused_proxy_holds_a_query_until_resumed(pg_proxy) -> None:  # type: ignore[no-untyped-def]
    conn = psycopg.connect(pg_proxy.url, autocommit=True, connect_timeout=5)
    pg_proxy.pause()
    result: list[object] = []
    query = threading.Thread(target=lambda: result.append(conn.execute("SELECT 3").fetchone()))
    query.start()
    query.join(timeout=0.3)
    assert query.is_alive() and not result  # stalled: nothing reaches the server
    pg_proxy.resume()
    query.join(timeout=10)
    assert result == [(3,)]
    conn.close()


def test_own_redis_pauses_and_restarts_empty(own_redis) -> None:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(own_redis.url, socket_timeout=0.3)
    client.set("k", "v")
    own_redis.pause()
    with pytest.raises(redis.TimeoutError):
        client.get("k")
    own_redis.resume()
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2)
    assert client.get("k") == b"v"
    own_redis.kill()
    own_redis.start()
    assert client.get("k") is None
