"""The TMDb v3 client: one pooled session, timeouts, bounded retries, a circuit breaker.

- retries only 429 (honouring Retry-After) and 502/503/504, with capped exponential
  backoff and full jitter, inside a total time budget; never other 4xx;
- TMDb's not-found codes become ``SourceNotFound``; everything else that prevents an
  answer (invalid key, 5xx, timeouts, malformed JSON) becomes ``SourceUnavailable``;
- the API key or read token never appears in a log line or an error message.
"""
from __future__ import annotations

import logging
import random
import re
import time

import requests
from requests.adapters import HTTPAdapter

from .base import MAX_PAGE, MovieSource, SourceNotFound, SourceUnavailable
from ..dependencies.breaker import CircuitBreaker

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


class TMDbSource(MovieSource):
    name = "tmdb"

    def __init__(self, base_url: str, api_key: str | None = None, read_token: str | None = None, *,
                 connect_timeout: float = 3.05, read_timeout: float = 5.0, budget: float = 8.0,
                 max_retries: int = 3, backoff_base: float = 0.25, backoff_cap: float = 4.0,
                 breaker: CircuitBreaker | None = None, language: str = "en-US", sleep=time.sleep,
                 pool_size: int = 20):
        if not (api_key or read_token):
            raise ValueError("The TMDb source needs tmdb.api_key (TMDB_API_KEY) or tmdb.read_token (TMDB_READ_TOKEN).")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._read_token = read_token
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.budget = budget
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.breaker = breaker or CircuitBreaker()
        self.language = language
        self._sleep = sleep
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        if read_token:
            self.session.headers["Authorization"] = f"Bearer {read_token}"

    def __repr__(self):  # never show the credentials
        return f"<TMDbSource {self.base_url}>"

    # -- transport ---------------------------------------------------------------
    def _backoff(self, attempt: int, response) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** attempt)))

    def _get(self, path: str, **params) -> dict:
        if not self.breaker.allow():
            raise SourceUnavailable("TMDb circuit breaker is open")
        params = {k: v for k, v in params.items() if v is not None}
        if self._api_key and not self._read_token:
            params["api_key"] = self._api_key
        deadline = time.monotonic() + self.budget
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            response = None
            try:
                response = self.session.get(
                    self.base_url + path, params=params,
                    timeout=(min(self.connect_timeout, max(remaining, 0.01)), min(self.read_timeout, max(remaining, 0.01))),
                )
            except requests.RequestException as exc:
                self.breaker.failure()
                log.warning("TMDb %s failed: %s", path, type(exc).__name__)
                raise SourceUnavailable(f"TMDb request failed ({type(exc).__name__})") from None
            status = response.status_code
            if status in RETRY_STATUSES and attempt < self.max_retries:
                wait = self._backoff(attempt, response)
                if time.monotonic() + wait < deadline:
                    log.info("TMDb %s answered %s; retrying in %.2fs", path, status, wait)
                    self._sleep(wait)
                    attempt += 1
                    continue
            return self._handle(path, response)

    def _handle(self, path: str, response) -> dict:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 200:
            if not isinstance(body, (dict, list)):
                self.breaker.failure()
                log.warning("TMDb %s returned malformed JSON", path)
                raise SourceUnavailable("TMDb returned malformed data")
            self.breaker.success()
            return body
        code = body.get("status_code") if isinstance(body, dict) else None
        if status == 404 or code in NOT_FOUND_CODES:
            self.breaker.success()  # TMDb is up; the thing is just not there
            raise SourceNotFound(path)
        if status == 401 or code in BAD_CREDENTIAL_CODES:
            self.breaker.failure()
            log.error("TMDb rejected our credentials (HTTP %s, status_code %s): check TMDB_API_KEY / TMDB_READ_TOKEN",
                      status, code)
            raise SourceUnavailable("TMDb rejected the credentials")
        if 400 <= status < 500 and status != 429:
            self.breaker.success()  # TMDb answered: it is up, our request was wrong
            log.warning("TMDb %s refused the request: HTTP %s, status_code %s", path, status, code)
            raise SourceUnavailable(f"TMDb refused the request (HTTP {status})")
        self.breaker.failure()
        log.warning("TMDb %s failed: HTTP %s, status_code %s", path, status, code)
        raise SourceUnavailable(f"TMDb failed (HTTP {status})")

    def _page(self, data) -> dict:
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            self.breaker.failure()
            raise SourceUnavailable("TMDb returned an unexpected page")
        data["total_pages"] = min(MAX_PAGE, int(data.get("total_pages") or 0))
        data["results"] = [r for r in data["results"] if isinstance(r, dict) and isinstance(r.get("id"), int)]
        return data

    # -- the interface -----------------------------------------------------------
    def trending(self, window: str, page: int) -> dict:
        return self._page(self._get(f"/trending/movie/{window}", page=page, language=self.language))

    def movie(self, tmdb_id: int) -> dict:
        data = self._get(f"/movie/{int(tmdb_id)}", append_to_response="credits", language=self.language)
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            self.breaker.failure()
            raise SourceUnavailable("TMDb returned an unexpected movie")
        return data

    def recommendations(self, tmdb_id: int, page: int) -> dict:
        return self._page(self._get(f"/movie/{int(tmdb_id)}/recommendations", page=page, language=self.language))

    def similar(self, tmdb_id: int, page: int) -> dict:
        return self._page(self._get(f"/movie/{int(tmdb_id)}/similar", page=page, language=self.language))

    def search_movies(self, query: str, page: int, year: int | None = None, include_adult: bool = False) -> dict:
        return self._page(self._get("/search/movie", query=query, page=page, year=year,
                                    include_adult="true" if include_adult else "false", language=self.language))

    def search_people(self, query: str, page: int) -> dict:
        return self._page(self._get("/search/person", query=query, page=page, include_adult="false"))

    def discover(self, genre_ids=(), cast_ids=(), page: int = 1) -> dict:
        return self._page(self._get(
            "/discover/movie", page=page, include_adult="false", sort_by="popularity.desc",
            with_genres=",".join(map(str, genre_ids)) or None,
            with_cast="|".join(map(str, cast_ids)) or None,
            language=self.language,
        ))

    def genres(self) -> list[dict]:
        data = self._get("/genre/movie/list", language=self.language)
        genres = data.get("genres") if isinstance(data, dict) else None
        if not isinstance(genres, list):
            self.breaker.failure()
            raise SourceUnavailable("TMDb returned an unexpected genre list")
        return [{"id": g["id"], "name": g["name"]} for g in genres if isinstance(g, dict) and "id" in g]

    def state(self) -> dict:
        return {"name": self.name, "breaker": self.breaker.state, "breaker_opened": self.breaker.times_opened}
