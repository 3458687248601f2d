"""The TMDb v3 client, in three parts, each in one place:

- ``Transport``: one pooled HTTP session, the credentials, per-attempt timeouts. It turns
  one GET into a ``requests.Response`` or ``SourceUnavailable`` (connection refused, timeout).
- ``RetryPolicy`` (tenacity): retries only 429 (honouring Retry-After) and 502/503/504,
  with capped exponential backoff and full jitter, at most ``max_retries`` times and only
  while the next attempt still starts inside the total time budget; never other 4xx. A call
  made while the cache holds a stale copy of the value is not retried, and gets
  ``stale_copy_budget`` seconds (1 s by default) instead of the whole budget: the copy is
  served at once when TMDb fails, soon when it is slow (``base.stale_copy_available``).
- the breaker (``dependencies.breaker.CircuitBreaker``) around the one call site,
  ``TMDbSource._call``: a call is a success only when TMDb answered in a well-formed way
  (the expected shape, or TMDb's own "not found"/"bad request" answer); a garbage answer is
  a failure, so it cannot close a half-open breaker.

A 200's body is read by ``tmdb_answers``: what the app uses of it, each field in its type.

TMDb's not-found codes become ``SourceNotFound``; everything else that prevents an answer
(invalid key, 5xx, timeouts, malformed JSON, an unexpected shape) becomes
``SourceUnavailable``. The API key or read token never appears in a log line or an error message.
"""
from __future__ import annotations

import logging
import random
import re
import time

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_result, stop_after_attempt

from . import tmdb_answers as answers
from .base import (MovieSource, SourceNotFound, SourcePaced, SourceUnavailable, cached_only, charge_call,
                   client_waiting, stale_copy_available)
from .. import metrics
from ..dependencies.breaker import OPEN, CircuitBreaker

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 502, 503, 504}
NOT_FOUND_CODES = {6, 34}
BAD_CREDENTIAL_CODES = {7, 10}
_SECRET_IN_URL = re.compile(r"(api_key=)[^&\s\"']+")


class _RedactSecrets(logging.Filter):
    """urllib3 logs request lines with their query string at DEBUG: hide the key there."""

    def filter(self, record):
        if record.args:
            record.args = tuple(_SECRET_IN_URL.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _SECRET_IN_URL.sub(r"\1***", record.msg)
        return True


_redactor = _RedactSecrets()
logging.getLogger("urllib3.connectionpool").addFilter(_redactor)


# TMDb's largest answers (a movie with credits, a page of 20) are tens of kilobytes.
MAX_BODY_BYTES = 4 * 1024 * 1024
BODY_CHUNK_BYTES = 16 * 1024


class _BodyRefused(Exception):
    """A body too slow or too large: the call failed, as a timeout would."""


class Transport:
    """One pooled session to TMDb with its credentials; one GET per call, bounded by timeouts."""

    def __init__(self, base_url: str, api_key: str | None, read_token: str | None, connect_timeout: float,
                 read_timeout: float, pool_size: int = 20):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key if not read_token else None
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        if read_token:
            self.session.headers["Authorization"] = f"Bearer {read_token}"

    def get(self, path: str, params: dict, time_left: float) -> requests.Response:
        params = {k: v for k, v in params.items() if v is not None}
        if self._api_key:
            params["api_key"] = self._api_key
        left = max(time_left, 0.01)
        deadline = time.monotonic() + left
        try:
            response = self.session.get(self.base_url + path, params=params, stream=True,
                                        timeout=(min(self.connect_timeout, left), min(self.read_timeout, left)))
            with response:
                response._content = self._read_body(response, deadline)
            return response
        except requests.RequestException as exc:
            log.warning("TMDb %s failed: %s", path, type(exc).__name__)
            raise SourceUnavailable(f"TMDb request failed ({type(exc).__name__})") from None
        except _BodyRefused as exc:
            log.warning("TMDb %s failed: %s", path, exc)
            raise SourceUnavailable(f"TMDb request failed ({exc})") from None

    @staticmethod
    def _read_body(response, deadline: float) -> bytes:
        """The whole body, at most ``MAX_BODY_BYTES`` of it, or a failure once ``deadline`` has
        passed (checked after each read, which itself waits at most the call's read timeout:
        the call ends within its budget plus one read timeout).

        The read timeout bounds each wait for data, not their sum: a body sent a few bytes at a
        time would hold the request for as long as TMDb keeps sending. So the body is read as it
        arrives (``read1``: what one read of the socket gave, decoded) and the clock is checked
        between reads. ``requests``' own reading asks for fixed-size blocks and waits for each
        to fill, which a trickle never does before the end."""
        chunks, size = [], 0
        try:
            while chunk := response.raw.read1(BODY_CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _BodyRefused(f"body larger than {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise _BodyRefused("body not received within the time budget")
        except urllib3.exceptions.HTTPError as exc:  # a read timeout, a connection cut mid-body
            raise _BodyRefused(type(exc).__name__) from None
        response._content_consumed = True  # what requests sets once it has read a body itself
        return b"".join(chunks)


class RetryPolicy:
    """When to ask TMDb again: 429 and 502/503/504 only, within ``max_retries`` and ``budget`` seconds."""

    def __init__(self, budget: float = 8.0, max_retries: int = 3, backoff_base: float = 0.25,
                 backoff_cap: float = 4.0, sleep=time.sleep):
        self.budget = budget
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._retrying = Retrying(
            retry=retry_if_result(lambda response: response.status_code in RETRY_STATUSES),
            wait=self._wait,
            # Stop when retries are used up, or when waiting would start the next attempt past the budget.
            stop=stop_after_attempt(max_retries + 1) | self._past_budget,
            sleep=sleep,
            before_sleep=self._log_retry,
            retry_error_callback=lambda state: state.outcome.result(),  # the last answer is handled as is
        )

    def _wait(self, state) -> float:
        response = state.outcome.result()
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** (state.attempt_number - 1))))

    def _past_budget(self, state) -> bool:
        return state.seconds_since_start + (state.upcoming_sleep or 0) >= self.budget

    @staticmethod
    def _log_retry(state) -> None:
        log.info("TMDb answered %s; retrying in %.2fs", state.outcome.result().status_code, state.upcoming_sleep)

    def run(self, attempt, retry: bool = True, budget: float | None = None) -> requests.Response:
        """``attempt(time_left)`` until its answer is final; exceptions are never retried.

        ``retry=False``: one attempt, its answer final whatever it is, within ``budget`` seconds
        if given (else the policy's budget)."""
        if not retry:
            return attempt(min(budget, self.budget) if budget is not None else self.budget)
        started = time.monotonic()
        return self._retrying.copy()(lambda: attempt(self.budget - (time.monotonic() - started)))


def _body(response):
    try:
        return response.json()
    except ValueError:
        return None


class TMDbSource(MovieSource):
    name = "tmdb"

    def __init__(self, base_url: str, api_key: str | None = None, read_token: str | None = None, *,
                 connect_timeout: float = 3.05, read_timeout: float = 5.0, budget: float = 8.0,
                 stale_copy_budget: float | None = None, max_retries: int = 3, backoff_base: float = 0.25,
                 backoff_cap: float = 4.0,
                 breaker: CircuitBreaker | None = None, language: str = "en-US", sleep=time.sleep,
                 pool_size: int = 20, pace=None):
        if not (api_key or read_token):
            raise ValueError("The TMDb source needs tmdb.api_key (TMDB_API_KEY) or tmdb.read_token (TMDB_READ_TOKEN).")
        self.transport = Transport(base_url, api_key, read_token, connect_timeout, read_timeout, pool_size)
        self.retry = RetryPolicy(budget, max_retries, backoff_base, backoff_cap, sleep)
        # A lookup whose caller holds a stale copy: one attempt within this (the whole budget if None).
        self.stale_copy_budget = stale_copy_budget
        self.breaker = breaker or CircuitBreaker()
        self.language = language
        # The deployment's pace (tmdb.calls_per_deployment): a callable that takes one place for
        # a call and returns None, or the seconds until there is room. None: no pace.
        self.pace = pace
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    def __repr__(self):  # never show the credentials
        return f"<TMDbSource {self.base_url}>"

    # -- the one call site ---------------------------------------------------------
    def _call(self, path: str, shape, **params):
        """GET ``path`` through the retry policy, inside the breaker; ``shape`` checks a 200's body."""
        if cached_only():  # not a call that failed: nothing for the breaker or the metrics
            raise SourceUnavailable("TMDb is not asked here: cached answers only")
        # An open breaker refuses before anything is charged: a call that is not made takes
        # nothing from the client's share or the deployment's pace. (Only ``allow()`` grants a
        # half-open breaker's one trial, so it comes after the charges: a refused charge must
        # not leave a trial granted and never resolved.)
        if self.breaker.state == OPEN:
            self._refused_by_breaker()
        charge_call()  # the same: a client over its share is refused before TMDb is asked
        self._paced(self.retry.budget)  # and so is a call over the deployment's pace
        if not self.breaker.allow():
            self._refused_by_breaker()
        started = time.perf_counter()
        ok = False
        try:
            # With a stale copy to serve, a 503 or a slow TMDb is answered with it soon: one
            # attempt, within stale_copy_budget, not the retries and their backoff.
            stale = stale_copy_available()
            attempts = 0

            def attempt(time_left: float):
                nonlocal attempts
                attempts += 1
                if attempts > 1:  # a retry is a call too
                    try:
                        self._paced(time_left)
                    except SourcePaced:  # no room to retry: TMDb's last answer, a failure, stands
                        raise SourceUnavailable("TMDb failed, and the pace left no room to retry") from None
                return self.transport.get(path, params, time_left)

            response = self.retry.run(attempt, retry=not stale, budget=self.stale_copy_budget if stale else None)
            value = self._answer(path, response, shape)
            ok = True
        except SourceNotFound:
            ok = True
            self.breaker.success()  # TMDb is up; the thing is just not there
            raise
        except _Refused as exc:
            self.breaker.success()  # TMDb answered: it is up, our request was wrong
            raise SourceUnavailable(str(exc)) from None
        except SourceUnavailable:
            self.breaker.failure()
            raise
        except BaseException:
            self.breaker.failure()  # a half-open trial must end one way or the other
            raise
        finally:
            metrics.upstream_call("tmdb", time.perf_counter() - started, ok)
            metrics.breaker_state("tmdb", self.breaker.state)
        self.breaker.success()
        metrics.breaker_state("tmdb", self.breaker.state)
        return value

    def _refused_by_breaker(self):
        metrics.upstream_call("tmdb", None, ok=False)
        raise SourceUnavailable("TMDb circuit breaker is open")

    def _paced(self, time_left: float) -> None:
        """Take a place in the deployment's pace for the call about to be made, or raise
        ``SourcePaced``. A call a client's request is waiting on, or one with a stale copy to
        serve instead, does not wait for room: the request is answered at once (a stale copy, or
        503 with Retry-After) and no thread is held (nor are the threads a request starts for
        its movies, ``services.movies.in_threads``). Other calls (jobs, scripts) wait for room
        while ``time_left`` allows."""
        if self.pace is None:
            return
        deadline = time.monotonic() + time_left
        while (wait := self.pace()) is not None:
            if client_waiting() or stale_copy_available() or time.monotonic() + wait >= deadline:
                metrics.throttled("tmdb_pace")
                raise SourcePaced(wait)
            self._sleep(wait)

    @staticmethod
    def _answer(path: str, response, shape):
        status = response.status_code
        body = _body(response)
        if status == 200:
            try:
                return shape(body)
            except answers.Unusable as exc:
                log.warning("TMDb %s returned %s", path, "malformed JSON" if body is None else exc)
                raise SourceUnavailable("TMDb returned malformed data") from None
        code = body.get("status_code") if isinstance(body, dict) else None
        if status == 404 or code in NOT_FOUND_CODES:
            raise SourceNotFound(path)
        if status == 401 or code in BAD_CREDENTIAL_CODES:
            log.error("TMDb rejected our credentials (HTTP %s, status_code %s): check TMDB_API_KEY / TMDB_READ_TOKEN",
                      status, code)
            raise SourceUnavailable("TMDb rejected the credentials")
        if 400 <= status < 500 and status != 429:
            log.warning("TMDb %s refused the request: HTTP %s, status_code %s", path, status, code)
            raise _Refused(f"TMDb refused the request (HTTP {status})")
        log.warning("TMDb %s failed: HTTP %s, status_code %s", path, status, code)
        raise SourceUnavailable(f"TMDb failed (HTTP {status})")

    # -- the interface -----------------------------------------------------------
    def _lang(self, language: str | None) -> str:
        return language or self.language

    def trending(self, window: str, page: int, language: str | None = None) -> dict:
        return self._call(f"/trending/movie/{window}", answers.movie_page, page=page, language=self._lang(language))

    def movie(self, tmdb_id: int, language: str | None = None) -> dict:
        return self._call(f"/movie/{int(tmdb_id)}", answers.movie, append_to_response="credits",
                          language=self._lang(language))

    def recommendations(self, tmdb_id: int, page: int, language: str | None = None) -> dict:
        return self._call(f"/movie/{int(tmdb_id)}/recommendations", answers.movie_page, page=page,
                          language=self._lang(language))

    def similar(self, tmdb_id: int, page: int, language: str | None = None) -> dict:
        return self._call(f"/movie/{int(tmdb_id)}/similar", answers.movie_page, page=page,
                          language=self._lang(language))

    def search_movies(self, query: str, page: int, year: int | None = None, include_adult: bool = False,
                      language: str | None = None) -> dict:
        return self._call("/search/movie", answers.movie_page, query=query, page=page, year=year,
                          include_adult="true" if include_adult else "false", language=self._lang(language))

    def search_people(self, query: str, page: int) -> dict:
        return self._call("/search/person", answers.person_page, query=query, page=page, include_adult="false")

    def discover(self, query, language: str | None = None) -> dict:
        return self._call("/discover/movie", answers.movie_page, **query.tmdb_params(), language=self._lang(language))

    def genres(self, language: str | None = None) -> list[dict]:
        return self._call("/genre/movie/list", answers.genre_list, language=self._lang(language))

    def state(self) -> dict:
        return {"name": self.name, "breaker": self.breaker.state, "breaker_opened": self.breaker.times_opened}


class _Refused(Exception):
    """TMDb refused our request (a 4xx other than 401/404/429): it is up."""
