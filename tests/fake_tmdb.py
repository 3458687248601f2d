"""A fake TMDb: a real HTTP server on loopback answering in TMDb v3's shapes.

Switches (``FakeTMDb.set_mode``): ``ok``, ``slow`` (delay, then answer), ``timeout``
(sleep past the client's read timeout), ``error`` (HTTP 500/502/503 with TMDb's error
body; ``failing_paths`` limits it to those paths), ``rate_limited`` (429 with Retry-After, ``fail_times`` times, then ok),
``invalid_key``, ``malformed`` (200 with a body that is not JSON), ``garbage`` (200 with JSON
of the wrong shape). Unknown movie ids
answer 404 with status_code 34. ``calls`` counts requests per path; ``queries`` keeps
the query strings received (``queries_by_path``: per path, first values). ``language=fr-*``
answers with French titles, overviews and genre names.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API_KEY = "fake-tmdb-key-0123456789"
READ_TOKEN = "fake-tmdb-read-token-abcdef"

# Titles, overviews and genre names in French when ``language=fr-*`` is asked (TMDb translates
# what it has and keeps the original otherwise).
FRENCH_GENRES = {28: "Action", 878: "Science-Fiction", 18: "Drame", 35: "Comédie", 53: "Thriller"}
# sort_by -> the field sorted on, descending (stable: ties keep popularity order).
DISCOVER_SORTS = {"popularity.desc": "popularity", "vote_average.desc": "vote_average",
                  "primary_release_date.desc": "release_date"}
GENRES = [{"id": 28, "name": "Action"}, {"id": 878, "name": "Science Fiction"}, {"id": 18, "name": "Drama"},
          {"id": 35, "name": "Comedy"}, {"id": 53, "name": "Thriller"}]


def _number(value):
    """A planted value of the wrong type sorts and compares as 0 (``""`` for text): the fake
    serves such movies as TMDb would, and the client under test has to cope."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _movie(tmdb_id, title, genre_ids, popularity, date="1999-03-30", adult=False, poster=True, vote=7.5):
    return {
        "adult": adult, "backdrop_path": None, "genre_ids": genre_ids, "id": tmdb_id, "original_language": "en",
        "original_title": title, "overview": f"Overview of {title}.", "popularity": popularity,
        "poster_path": f"/poster{tmdb_id}.jpg" if poster else None, "release_date": date, "title": title,
        "video": False, "vote_average": vote, "vote_count": 1000 + tmdb_id,
    }


MOVIES = {
    603: _movie(603, "The Matrix", [28, 878], 80.5),
    604: _movie(604, "The Matrix Reloaded", [28, 878], 40.1, "2003-05-15"),
    605: _movie(605, "The Matrix Revolutions", [28, 878], 35.0, "2003-11-05"),
    550: _movie(550, "Fight Club", [18], 70.2, "1999-10-15", vote=8.4),
    680: _movie(680, "Pulp Fiction", [53, 80], 65.0, "1994-09-10", vote=8.5),
    13: _movie(13, "Forrest Gump", [35, 18], 60.0, "", poster=False, vote=8.5),
    999: _movie(999, "Adult Title", [18], 5.0, adult=True),
}


class FakeTMDb:
    def __init__(self):
        self.calls: Counter = Counter()
        self.queries: list[dict] = []
        self.auth_headers: list[str | None] = []
        self._lock = threading.Lock()
        self.reset()
        handler = self._handler_class()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/3"

    def reset(self):
        with self._lock:
            self.mode = "ok"
            self.status = 500
            self.delay = 0.0
            self.retry_after = "1"
            self.fail_times = 0
            # "trickle": the body is sent ``trickle_bytes`` at a time, ``delay`` seconds apart.
            self.trickle_bytes = 256
            self.failing_paths = set()
            self.calls.clear()
            self.queries.clear()
            self.queries_by_path = {}
            self.auth_headers.clear()

    def set_mode(self, mode: str, **options):
        with self._lock:
            self.mode = mode
            for key, value in options.items():
                setattr(self, key, value)

    def total_calls(self) -> int:
        return sum(self.calls.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- answers -----------------------------------------------------------------
    def answer(self, path: str, query: dict, auth: str | None):
        with self._lock:
            self.calls[path] += 1
            self.queries.append(query)
            self.queries_by_path.setdefault(path, []).append({k: v[0] for k, v in query.items()})
            self.auth_headers.append(auth)
            mode = self.mode
            if self.failing_paths:
                mode = "error" if path in self.failing_paths else "ok"
            if mode == "rate_limited":
                if self.fail_times > 0:
                    self.fail_times -= 1
                else:
                    mode = "ok"
            if mode == "error" and self.fail_times:
                self.fail_times -= 1
                if self.fail_times == 0:
                    self.mode = "ok"
        if mode in ("slow", "timeout"):
            time.sleep(self.delay)
        if mode == "error":
            return self.status, {"success": False, "status_code": 11, "status_message": "Internal error."}, {}
        if mode == "rate_limited":
            return 429, {"success": False, "status_code": 25, "status_message": "Over the limit."}, {
                "Retry-After": self.retry_after}
        if mode == "malformed":
            return 200, "<html>not json", {}
        if mode == "garbage":
            return 200, {"unexpected": True}, {}
        key = query.get("api_key", [None])[0]
        if mode == "invalid_key" or (key != API_KEY and auth != f"Bearer {READ_TOKEN}"):
            return 401, {"success": False, "status_code": 7, "status_message": "Invalid API key."}, {}
        status, body, headers = self.route(path, query)
        if status == 200:
            body = self.translate(body, query.get("language", ["en-US"])[0])
        return status, body, headers

    def route(self, path: str, query: dict):
        parts = path.strip("/").split("/")[1:]  # drop "3"
        page = int(query.get("page", ["1"])[0])
        if page > 500:
            return 400, {"success": False, "status_code": 22, "status_message": "Invalid page."}, {}
        movies = sorted(MOVIES.values(), key=lambda m: -_number(m["popularity"]))
        if parts[:2] == ["trending", "movie"]:
            return 200, self.page([{**m, "media_type": "movie"} for m in movies], page, total_pages=1200), {}
        if parts == ["genre", "movie", "list"]:
            return 200, {"genres": GENRES}, {}
        if parts == ["search", "movie"]:
            words = query.get("query", [""])[0].lower()
            adult_ok = query.get("include_adult", ["false"])[0] == "true"
            return 200, self.page([m for m in movies if (words in _text(m["title"]).lower()
                                                         or words in _text(m["original_title"]).lower())
                                   and (adult_ok or not m["adult"])], page), {}
        if parts == ["search", "person"]:
            return 200, self.page([{"id": 6384, "name": "Keanu Reeves", "known_for_department": "Acting"}], page), {}
        if parts == ["discover", "movie"]:
            return 200, self.page(self.discover(movies, query), page), {}
        if parts[0] == "movie" and parts[1].isdigit():
            movie = MOVIES.get(int(parts[1]))
            if movie is None:
                return 404, {"success": False, "status_code": 34, "status_message": "Not found."}, {}
            if len(parts) == 2:
                return 200, self.detail(movie, "credits" in query.get("append_to_response", [""])[0]), {}
            if parts[2] in ("recommendations", "similar"):
                return 200, self.page([m for m in movies if m["id"] != movie["id"]], page), {}
        return 404, {"success": False, "status_code": 34, "status_message": "Not found."}, {}

    @staticmethod
    def discover(movies, query):
        """/discover/movie: with_genres (comma = all), with_cast (ignored: no cast here), vote_count.gte,
        primary_release_date.gte/.lte, sort_by; adult titles never (include_adult=false)."""
        first = {k: v[0] for k, v in query.items()}
        wanted = {int(g) for g in first.get("with_genres", "").split(",") if g}
        low, high = first.get("primary_release_date.gte"), first.get("primary_release_date.lte")
        votes = int(first.get("vote_count.gte", 0))
        found = [m for m in movies if isinstance(m["genre_ids"], list) and wanted <= set(m["genre_ids"])
                 and not m["adult"] and _number(m["vote_count"]) >= votes
                 and (low is None or _text(m["release_date"]) >= low)
                 and (high is None or (m["release_date"] and _text(m["release_date"]) <= high))]
        field = DISCOVER_SORTS[first.get("sort_by", "popularity.desc")]
        key = _text if field == "release_date" else _number
        return sorted(found, key=lambda m: key(m[field]), reverse=True)

    @staticmethod
    def translate(body, language):
        """What TMDb would answer in ``language``: French titles, overviews and genre names for fr-*."""
        if not language.startswith("fr"):
            return body

        def movie(m):
            if not isinstance(m, dict) or "title" not in m:
                return m
            out = {**m, "title": f"{m['title']} (FR)", "overview": f"Résumé de {m['title']}."}
            if isinstance(m.get("genres"), list):
                out["genres"] = [{**g, "name": FRENCH_GENRES.get(g["id"], g["name"])} for g in m["genres"]]
            return out

        if isinstance(body, dict) and isinstance(body.get("results"), list):
            return {**body, "results": [movie(m) for m in body["results"]]}
        if isinstance(body, dict) and isinstance(body.get("genres"), list) and "title" not in body:
            return {"genres": [{**g, "name": FRENCH_GENRES.get(g["id"], g["name"])} for g in body["genres"]]}
        return movie(body)

    @staticmethod
    def page(items, page, total_pages=None):
        return {"page": page, "results": items[(page - 1) * 20: page * 20],
                "total_pages": total_pages or max(1, (len(items) + 19) // 20), "total_results": len(items)}

    @staticmethod
    def detail(movie, with_credits):
        names = {g["id"]: g["name"] for g in GENRES}
        genre_ids = movie["genre_ids"] if isinstance(movie["genre_ids"], list) else []
        data = {"genres": [{"id": g, "name": names.get(g, "Crime")} for g in genre_ids],
                "runtime": 136, "tagline": "Welcome to the Real World.", "imdb_id": "tt0133093",
                "status": "Released", "budget": 63000000, "revenue": 463517383}
        data.update({k: v for k, v in movie.items() if k != "genre_ids"})  # a test's own detail fields win
        if with_credits and "credits" not in movie:
            cast = [{"id": 6384 + i, "name": f"Actor {i}", "character": f"Role {i}", "order": i,
                     "profile_path": f"/p{i}.jpg", "known_for_department": "Acting"} for i in range(14)]
            cast[0]["name"] = "Keanu Reeves"
            data["credits"] = {"cast": list(reversed(cast)), "crew": [
                {"id": 9339, "name": "Lilly Wachowski", "job": "Director", "department": "Directing"},
                {"id": 9340, "name": "Lana Wachowski", "job": "Director", "department": "Directing"},
                {"id": 1, "name": "Someone Else", "job": "Producer", "department": "Production"}]}
        return data

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                parsed = urlparse(self.path)
                status, body, headers = fake.answer(parsed.path, parse_qs(parsed.query),
                                                    self.headers.get("Authorization"))
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    if fake.mode == "trickle":
                        for start in range(0, len(payload), fake.trickle_bytes):
                            self.wfile.write(payload[start:start + fake.trickle_bytes])
                            self.wfile.flush()
                            time.sleep(fake.delay)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args):
                pass

        return Handler
