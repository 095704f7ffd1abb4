"""Rate limits answered with 429 + Retry-After: ingest and OTLP per key, REST and GraphQL
per user, /mcp per bearer credential.

A limit is a fixed window (`Rate(count, seconds)` from `rate_limits:` in
mission_control.yml): at most `count` hits of one bucket per window of `seconds`.
With REDIS_URL the counts live in Redis (one INCR + EXPIRE script per hit, shared by
every web process); on the embedded default, in this process.

A limiter that cannot reach Redis lets the request through and logs it: a limit is a
protection, and an outage of it must not take ingest down with it.

Who a bucket belongs to (`identity`): the signed-in user when there is one, else the
client's network address. Ingest and OTLP buckets are per ingest key, /mcp's per API
token or JWT (a digest of it, checked before the credential is looked up, so a flood
costs no database read). WebSocket limits live on
the consumer (missioncontrol/consumers.py): frames per connection (`FrameWindow`) and
open sockets per user.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from missioncontrol.config import Rate
from missioncontrol.credentials import bearer

logger = logging.getLogger(__name__)

# INCR the window's counter; the first hit of a window sets its expiry.
_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@dataclass(frozen=True)
class Denied:
    """A hit over its limit: which limit, and when the next window opens."""

    limit: str  # the setting's name, e.g. "rate_limits.api"
    rate: Rate
    retry_after: int  # seconds
    who: str

    @property
    def reason(self) -> str:
        return f"more than {self.rate} for {self.who}; retry in {self.retry_after} s"

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "reason": self.reason, "retry_after": self.retry_after}

    def response(self) -> JsonResponse:
        answer = JsonResponse({"error": self.as_dict()}, status=429)
        answer["Retry-After"] = str(self.retry_after)
        return answer


def _window(rate: Rate, now: float) -> tuple[int, int]:
    """(window number, seconds until the next window) for `now`."""
    window = int(now // rate.seconds)
    return window, max(1, math.ceil((window + 1) * rate.seconds - now))


class MemoryLimiter:
    """Fixed windows counted in this process (the embedded default)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # bucket -> (window, hits)
        self._lock = threading.Lock()
        self._swept = 0.0

    def hit(self, bucket: str, rate: Rate) -> int:
        """0 if this hit is within `rate`, else the seconds until it would be."""
        now = time.time()
        window, retry_after = _window(rate, now)
        with self._lock:
            if now - self._swept > 60:  # forget finished windows now and then, not per hit
                self._swept = now
                self._counts = {k: v for k, v in self._counts.items() if v[0] >= window - 1}
            current, hits = self._counts.get(bucket, (window, 0))
            hits = hits + 1 if current == window else 1
            self._counts[bucket] = (window, hits)
        return retry_after if hits > rate.count else 0

    async def ahit(self, bucket: str, rate: Rate) -> int:
        return self.hit(bucket, rate)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class RedisLimiter:
    """Fixed windows counted in Redis, shared by every process (REDIS_URL)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis
        import redis.asyncio

        self._redis_module = redis
        self.prefix = prefix
        self._url = url
        self._sync = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._sync_script = self._sync.register_script(_SCRIPT)
        # redis.asyncio clients belong to the event loop that made them.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _key(self, bucket: str, rate: Rate, window: int) -> str:
        return f"{self.prefix}:{bucket}:{rate.seconds}:{window}"

    def hit(self, bucket: str, rate: Rate) -> int:
        window, retry_after = _window(rate, time.time())
        try:
            hits = int(self._sync_script(keys=[self._key(bucket, rate, window)], args=[rate.seconds + 1]))
        except self._redis_module.RedisError as exc:
            logger.warning("rate limit %s not checked, Redis is unavailable: %s", bucket, exc)
            return 0
        return retry_after if hits > rate.count else 0

    async def ahit(self, bucket: str, rate: Rate) -> int:
        window, retry_after = _window(rate, time.time())
        loop = asyncio.get_running_loop()
        script = self._async.get(loop)
        if script is None:
            client = self._redis_module.asyncio.Redis.from_url(
                self._url, socket_timeout=1, socket_connect_timeout=1
            )
            script = self._async[loop] = client.register_script(_SCRIPT)
        try:
            hits = int(await script(keys=[self._key(bucket, rate, window)], args=[rate.seconds + 1]))
        except self._redis_module.RedisError as exc:
            logger.warning("rate limit %s not checked, Redis is unavailable: %s", bucket, exc)
            return 0
        return retry_after if hits > rate.count else 0

    def reset(self) -> None:
        keys = list(self._sync.scan_iter(match=f"{self.prefix}:*", count=1000))  # sockets too
        if keys:
            self._sync.delete(*keys)


Limiter = MemoryLimiter | RedisLimiter
_current: list[Limiter] = []


def limiter() -> Limiter:
    """The process's limiter: Redis when REDIS_URL is set, in-process otherwise."""
    if not _current:
        url = settings.REDIS_URL
        _current.append(RedisLimiter(url, settings.RATE_LIMIT_KEY_PREFIX) if url else MemoryLimiter())
    return _current[0]


def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("REDIS_URL", "RATE_LIMIT_KEY_PREFIX"):
        _current.clear()
        _sockets.clear()


setting_changed.connect(_settings_changed)


def digest(secret: str) -> str:
    """A short stable name for a credential, so buckets never hold the credential itself."""
    return hashlib.sha256(secret.encode()).hexdigest()[:24]


def identity(user: Any, address: str | None) -> tuple[str, str]:
    """(bucket suffix, who for messages): the signed-in user, else the network address."""
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}", f"user {user.get_username()}"
    return f"ip:{address or 'unknown'}", f"address {address or 'unknown'}"


async def _acheck_credential(name: str, raw: str, who: str) -> Denied | None:
    """rate_limits.<name> for the credential `raw`, one bucket per credential."""
    rate: Rate = getattr(settings.RATE_LIMITS, name)
    if not rate.count:
        return None
    retry_after = await limiter().ahit(f"{name}:{digest(raw)}", rate)
    if not retry_after:
        return None
    return Denied(f"rate_limits.{name}", rate, retry_after, who)


async def acheck_ingest(raw_key: str) -> Denied | None:
    """The ingest key's limit (rate_limits.ingest), checked before the key is looked up."""
    return await _acheck_credential("ingest", raw_key, "this ingest key")


async def acheck_otlp(raw_key: str) -> Denied | None:
    """The ingest key's limit on the OTLP receiver (rate_limits.otlp), before its lookup."""
    return await _acheck_credential("otlp", raw_key, "this ingest key")


async def acheck_mcp(raw_token: str) -> Denied | None:
    """The bearer credential's limit on /mcp (rate_limits.mcp), before its lookup."""
    return await _acheck_credential("mcp", raw_token, "this token")


def _api(bucket: str, who: str, retry_after: int) -> Denied | None:
    if not retry_after:
        return None
    return Denied("rate_limits.api", settings.RATE_LIMITS.api, retry_after, who)


def check_api(user: Any, address: str | None) -> Denied | None:
    rate = settings.RATE_LIMITS.api
    if not rate.count:
        return None
    bucket, who = identity(user, address)
    return _api(bucket, who, limiter().hit(f"api:{bucket}", rate))


async def _acheck_api_bucket(bucket: str, who: str) -> Denied | None:
    rate = settings.RATE_LIMITS.api
    if not rate.count:
        return None
    return _api(bucket, who, await limiter().ahit(f"api:{bucket}", rate))


async def acheck_api(user: Any, address: str | None) -> Denied | None:
    return await _acheck_api_bucket(*identity(user, address))


# Digests of API tokens seen valid -> their owner's id, so a token's requests count
# against its user without a database read (bounded: forgotten all at once when full).
_known_tokens: dict[str, int | str] = {}
_KNOWN_TOKENS_KEPT = 10_000


def remember_token(raw: str, user_id: int | str) -> None:
    """Note that the API token `raw` stands for user `user_id` (after a successful lookup)."""
    if len(_known_tokens) >= _KNOWN_TOKENS_KEPT:
        _known_tokens.clear()
    _known_tokens[digest(raw)] = user_id


def bearer_user_id(raw: str) -> int | str | None:
    """The user a bearer credential stands for, known without a database read, or None.

    A JWT access token says so itself once its signature and expiry check out; an API
    token is known once it has been looked up. Anything else (bogus, expired, never
    seen) is None: its requests are counted per address before they cost a lookup.
    """
    from missioncontrol.models import TOKEN_PREFIX

    if raw.startswith(TOKEN_PREFIX):
        return _known_tokens.get(digest(raw))
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        user_id = AccessToken(raw)[api_settings.USER_ID_CLAIM]
    except (TokenError, KeyError):
        return None
    return user_id if isinstance(user_id, int | str) and str(user_id) else None


def _is_drf(view: Any) -> bool:
    from rest_framework.views import APIView

    cls = getattr(view, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


API_PREFIXES = ("/api/", "/graphql")


class RateLimitMiddleware(MiddlewareMixin):
    """rate_limits.api for the API's views that are not DRF's (GraphQL, export, tool calls),
    and for bearer credentials it does not know yet on every API view.

    A request is counted against its user: the session's, or the one a bearer
    credential is known to stand for (`bearer_user_id`), so users behind one proxy do
    not share a bucket. A bearer credential not known yet is counted against the
    client's address before the view looks it up: a flood of bogus tokens costs no
    database read past the limit. DRF views count known credentials and sessions in
    `missioncontrol.api.throttling.ApiRateThrottle`, after DRF has authenticated the
    request, so each request is counted once. The ingest edge, the OTLP receiver and
    /mcp are not Django views: each checks its own limit.
    """

    async def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> Any:
        if not request.path.startswith(API_PREFIXES):
            return None
        address = request.META.get("REMOTE_ADDR")
        raw = bearer(request.META.get("HTTP_AUTHORIZATION", ""))
        if raw:
            user_id = bearer_user_id(raw)
            if user_id is None:
                denied = await acheck_api(None, address)
            elif _is_drf(view):
                return None
            else:
                denied = await _acheck_api_bucket(f"user:{user_id}", "the user of this token")
            return None if denied is None else denied.response()
        if _is_drf(view):
            return None
        user = await request.auser() if hasattr(request, "auser") else None
        if user is not None and not hasattr(request, "_cached_user"):
            # Django caches auser() and the lazy `request.user` apart: share the one read.
            request._cached_user = user  # type: ignore[attr-defined]
        denied = await acheck_api(user, address)
        return None if denied is None else denied.response()


# Open sockets per identity: a sorted set of the sockets' channel names, scored by when
# each entry lapses. A socket renews its entry every SOCKET_RENEW seconds while open, so
# the sockets of a process that died stop counting after SOCKET_TTL.
SOCKET_TTL = 90
SOCKET_RENEW = 30
_OPEN_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class MemorySockets:
    """Open WebSockets per identity, counted in this process (the embedded default)."""

    def __init__(self) -> None:
        self._open: dict[str, set[str]] = {}

    async def open(self, identity: str, socket: str, cap: int) -> bool:
        """Count `socket` for `identity` unless that makes more than `cap`; whether it was."""
        sockets = self._open.setdefault(identity, set())
        if len(sockets) >= cap:
            return False
        sockets.add(socket)
        return True

    async def renew(self, identity: str, socket: str) -> None:
        return None  # nothing lapses in a process that is alive

    async def close(self, identity: str, socket: str) -> None:
        sockets = self._open.get(identity)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._open[identity]

    def reset(self) -> None:
        self._open.clear()


class RedisSockets:
    """Open WebSockets per identity across every web process (REDIS_URL)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis
        import redis.asyncio

        self._redis_module = redis
        self._url = url
        self.prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._redis_module.asyncio.Redis.from_url(
                self._url, socket_timeout=1, socket_connect_timeout=1
            )
            client.open_script = client.register_script(_OPEN_SCRIPT)
            self._clients[loop] = client
        return client

    def _key(self, identity: str) -> str:
        return f"{self.prefix}:sockets:{identity}"

    async def open(self, identity: str, socket: str, cap: int) -> bool:
        now = time.time()
        try:
            client = self._client()
            opened = await client.open_script(
                keys=[self._key(identity)], args=[now, cap, now + SOCKET_TTL, socket, SOCKET_TTL]
            )
        except self._redis_module.RedisError as exc:
            logger.warning("socket cap of %s not checked, Redis is unavailable: %s", identity, exc)
            return True
        return bool(opened)

    async def renew(self, identity: str, socket: str) -> None:
        try:
            client = self._client()
            async with client.pipeline(transaction=False) as pipe:
                pipe.zadd(self._key(identity), {socket: time.time() + SOCKET_TTL}, xx=True)
                pipe.expire(self._key(identity), SOCKET_TTL)
                await pipe.execute()
        except self._redis_module.RedisError as exc:
            logger.warning("socket of %s not renewed, Redis is unavailable: %s", identity, exc)

    async def close(self, identity: str, socket: str) -> None:
        try:
            await self._client().zrem(self._key(identity), socket)
        except self._redis_module.RedisError as exc:
            logger.warning("socket of %s not released, Redis is unavailable: %s", identity, exc)

    def reset(self) -> None:
        import redis

        client = redis.Redis.from_url(self._url)
        keys = list(client.scan_iter(match=f"{self.prefix}:sockets:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


_sockets: list[MemorySockets | RedisSockets] = []


def sockets() -> MemorySockets | RedisSockets:
    """The process's count of open WebSockets per identity: in Redis when REDIS_URL is set."""
    if not _sockets:
        url = settings.REDIS_URL
        _sockets.append(RedisSockets(url, settings.RATE_LIMIT_KEY_PREFIX) if url else MemorySockets())
    return _sockets[0]


class FrameWindow:
    """A WebSocket connection's frame budget (rate_limits.websocket_frames), in-process.

    `take()` answers 0 for a frame within the budget, else the seconds until the next
    window; `flooding` tells a client that kept sending past the limit, ignored errors
    included (more than the allowed count again), whose socket should be closed.
    """

    __slots__ = ("rate", "window", "hits")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.window = -1
        self.hits = 0

    def take(self) -> int:
        if not self.rate.count:
            return 0
        window, retry_after = _window(self.rate, time.monotonic())
        if window != self.window:
            self.window, self.hits = window, 0
        self.hits += 1
        return retry_after if self.hits > self.rate.count else 0

    @property
    def first_over(self) -> bool:
        return self.hits == self.rate.count + 1

    @property
    def flooding(self) -> bool:
        return self.hits > 2 * self.rate.count
