"""Imports of Letterboxd and IMDb CSV exports: checked when uploaded, run as a background job.

Formats (the header row tells them apart; ``format`` may name one):

- Letterboxd ``ratings.csv`` / ``diary.csv`` (``Date,Name,Year,Letterboxd URI,Rating,...``):
  a rating of 4 (of 5) and up is ``liked``, lower or none ``watched``;
  ``watched.csv`` (no Rating column) ``watched``; ``watchlist.csv`` (the same columns, told
  apart by its file name) ``bookmarked``.
- IMDb ratings export (``Const,Your Rating,Date Rated,Title,...,Year,...``): 8 (of 10) and up
  is ``liked``, lower ``watched``; IMDb watchlist export (``Position,Const,...``) ``bookmarked``.

Upload (``parse``): UTF-8 text, a known header, every row with a title, a year that is a
number (or empty), a rating in range; otherwise a 400 naming the lines at fault. The job
(``run_import``) matches each row by title and year against the local movie table, then the
movie source (bounded lookups, stored when found), and adds the interactions; one already
there is not added again, so importing the same file twice changes nothing. A blocked title
is not found here either (as with ``POST /api/user/interactions``, which answers 404): its
rows are reported unmatched and add nothing.
"""
from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from datetime import datetime, timezone

from sqlalchemy import func, select

from ..errors import ValidationError
from ..interfaces import IMovieSource, find_service
from ..models import Movie, UserMovieInteraction
from ..models.meta import dialect_insert
from ..movie_source import SourceNotFound, SourceUnavailable
from ..movie_source.genres import TMDB_GENRES
from ..presenters.movies import release_year
from ..services.blocklist import blocked_among
from ..services.library import bump_recs_version

FORMATS = ("letterboxd", "imdb", "auto")
MAX_ERRORS_SHOWN = 20
MAX_UNMATCHED_SHOWN = 100
MAX_SOURCE_LOOKUPS = 300  # per import: the movie source is a shared, rate-limited service
BATCH = 500
FIRST_YEAR, LAST_YEAR = 1870, 2100
_DECIMAL = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")


def _header_kind(header: list[str], filename: str) -> tuple[str, str] | None:
    """(format, variant) for a header row, or None."""
    names = {h.strip().lower() for h in header}
    if {"name", "year", "letterboxd uri"} <= names:
        if "rating" in names:
            return "letterboxd", "ratings"
        return "letterboxd", "watchlist" if "watchlist" in filename.lower() else "watched"
    if {"const", "title", "year"} <= names:
        if "your rating" in names:
            return "imdb", "ratings"
        return "imdb", "watchlist"
    return None


def _number(text: str):
    """A plain decimal as the exports write it, or None if empty; ValueError otherwise.

    Not ``float`` alone: it also takes ``inf``, ``nan``, ``1e999``, ``1_000`` and non-ASCII
    digits, and makes a number of thousands of digits infinite (whose ``int`` raises).
    """
    text = (text or "").strip()
    if not text:
        return None
    if not _DECIMAL.fullmatch(text):
        raise ValueError(text)
    return float(text)


def _date(text: str):
    """The row's date, or None if unreadable or before any film (a date in year 1 falls before
    year 1 in a time zone west of UTC: the database driver could not read it back)."""
    text = (text or "").strip()
    if not text.isascii():  # strptime's digits include every script's
        return None
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            at = datetime.strptime(text[:19], pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        return at if at.year >= FIRST_YEAR else None
    return None


def parse(data: bytes, declared: str = "auto", filename: str = "") -> dict:
    """Check an uploaded export; {"format", "variant", "rows": [{line, title, year, kind, at}]} or a 400."""
    if declared not in FORMATS:
        raise ValidationError.field("format", f"One of: {', '.join(FORMATS)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValidationError("The file is not UTF-8 text.", {"file": [f"line {line}: not UTF-8"], "lines": [str(line)]})
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise ValidationError("The file is not a CSV export.", {"file": [f"line {line}: binary data"], "lines": [str(line)]})
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError("The file is empty.", {"file": ["line 1: no header row"], "lines": ["1"]}) from None
    except csv.Error as exc:
        raise ValidationError("The file is not a CSV export.", {"file": [f"line 1: {exc}"], "lines": ["1"]}) from None
    kind = _header_kind(header, filename)
    if kind is None or (declared != "auto" and kind[0] != declared):
        expected = "a Letterboxd or IMDb export" if declared == "auto" else f"a {declared} export"
        raise ValidationError(f"The header row is not that of {expected}.",
                              {"file": ["line 1: unknown header (expected e.g. Date,Name,Year,Letterboxd URI,"
                                        "Rating or Const,Your Rating,Date Rated,Title,...,Year)"], "lines": ["1"]})
    fmt, variant = kind
    columns = {h.strip().lower(): i for i, h in enumerate(header)}
    title_col = columns["name"] if fmt == "letterboxd" else columns["title"]
    rating_col = columns.get("rating") if fmt == "letterboxd" else columns.get("your rating")
    date_col = columns.get("watched date", columns.get("date")) if fmt == "letterboxd" else \
        columns.get("date rated", columns.get("created"))
    scale = 5.0 if fmt == "letterboxd" else 10.0
    rows, problems = [], []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) < len(header):
                problems.append((line, f"{len(record)} fields, the header has {len(header)}"))
                continue
            title = record[title_col].strip()
            if not title:
                problems.append((line, "no title"))
                continue
            try:
                year = _number(record[columns["year"]])
                if year is not None and (year != int(year) or not FIRST_YEAR <= year <= LAST_YEAR):
                    raise ValueError
            except ValueError:
                problems.append((line, f"year {record[columns['year']][:20]!r} is not a year"))
                continue
            rating = None
            if rating_col is not None:
                try:
                    rating = _number(record[rating_col])
                    if rating is not None and not 0 < rating <= scale:
                        raise ValueError
                except ValueError:
                    problems.append((line, f"rating {record[rating_col][:20]!r} is not between 0 and {scale:g}"))
                    continue
            if variant == "watchlist":
                action = "bookmarked"
            elif rating is not None and rating >= 0.8 * scale:
                action = "liked"
            else:
                action = "watched"
            at = _date(record[date_col]) if date_col is not None else None
            rows.append({"line": line, "title": title[:500], "year": int(year) if year is not None else None,
                         "kind": action, "at": at.isoformat() if at else None})
    except csv.Error as exc:
        problems.append((reader.line_num, str(exc)))
    if problems:
        shown = problems[:MAX_ERRORS_SHOWN]
        raise ValidationError(f"{len(problems)} line(s) of the file are not valid.",
                              {"file": [f"line {line}: {what}" for line, what in shown],
                               "lines": [str(line) for line, _what in shown]})
    if not rows:
        raise ValidationError("The file has no rows to import.", {"file": ["line 2: no data rows"], "lines": ["2"]})
    return {"format": fmt, "variant": variant, "rows": rows}


_ARTICLE = re.compile(r"^(the|a|an|le|la|les|der|die|das|el)\s+")


def title_key(title: str) -> str:
    """Titles compared loosely: accents, case, punctuation and a leading article do not matter."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"&", " and ", text)
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    text = " ".join(text.split())
    return _ARTICLE.sub("", text)


def _year(movie_year, release_date):
    if movie_year:
        return movie_year
    return release_date.year if release_date else None


def match_local(dbsession, rows: list[dict]) -> dict:
    """{(title key, year): tmdb id} for the rows' titles found in the local movie table."""
    found = {}
    titles = sorted({r["title"].lower() for r in rows})
    for start in range(0, len(titles), BATCH):
        chunk = titles[start:start + BATCH]
        for tmdb_id, title, year, released in dbsession.execute(
                select(Movie.tmdb_id, Movie.title, Movie.release_year, Movie.release_date)
                .where(func.lower(Movie.title).in_(chunk))).all():
            found.setdefault((title_key(title), _year(year, released)), tmdb_id)
    return found


def _lookup(found: dict, row: dict):
    key = title_key(row["title"])
    if row["year"] is None:
        hits = [t for (k, _y), t in found.items() if k == key]
        return hits[0] if len(hits) == 1 else None
    for year in (row["year"], row["year"] - 1, row["year"] + 1):  # release dates differ by country
        if (key, year) in found:
            return found[(key, year)]
    return None


def run_import(ctx) -> None:
    from ..services.movies import upsert_movies

    with ctx.transaction() as session:
        from ..models import Job

        payload = session.get(Job, ctx.job_id).payload
    rows = json.loads(payload.decode())["rows"]
    total = len(rows)
    with ctx.transaction() as session:
        found = match_local(session, rows)
    source = find_service(ctx.registry, IMovieSource)
    lookups, source_down, fetched = 0, False, {}
    resolved: list[tuple[dict, int | None]] = []
    for index, row in enumerate(rows):
        tmdb_id = _lookup(found, row)
        if tmdb_id is None and not source_down and lookups < MAX_SOURCE_LOOKUPS:
            lookups += 1
            try:
                items = source.search_movies(row["title"], 1, row["year"]).value.get("results", [])
            except SourceUnavailable:
                source_down = True
                items = []
            except SourceNotFound:
                items = []
            for item in items:
                if not isinstance(item.get("id"), int):
                    continue
                key = (title_key(item.get("title") or ""), release_year(item))  # the catalog's: a year only
                if key not in found:
                    found[key] = item["id"]
                    fetched[item["id"]] = item
            tmdb_id = _lookup(found, row)
        resolved.append((row, tmdb_id))
        if index % 50 == 0:
            ctx.progress(0.8 * (index + 1) / total)
    with ctx.transaction() as session:
        # Read in the transaction that writes: a title blocked while the job ran is left out too.
        blocked = blocked_among(session, {tmdb_id for _row, tmdb_id in resolved if tmdb_id is not None})
        matched = [(row, tmdb_id) for row, tmdb_id in resolved if tmdb_id is not None and tmdb_id not in blocked]
        unmatched = [{"line": row["line"], "title": row["title"], "year": row["year"]}
                     for row, tmdb_id in resolved if tmdb_id is None or tmdb_id in blocked]
        wanted = {tmdb_id for _row, tmdb_id in matched}
        stored = set(session.execute(select(Movie.tmdb_id).where(Movie.tmdb_id.in_(list(wanted)))).scalars()) \
            if wanted else set()
        missing = [fetched[t] for t in wanted - stored if t in fetched]
        if missing:
            upsert_movies(session, missing, {g["id"]: g["name"] for g in TMDB_GENRES})
        ids = dict(session.execute(select(Movie.tmdb_id, Movie.id).where(Movie.tmdb_id.in_(list(wanted)))).all()) \
            if wanted else {}
        now = datetime.now(timezone.utc)
        values = {}
        for row, tmdb_id in matched:
            if tmdb_id in ids:
                at = datetime.fromisoformat(row["at"]) if row["at"] else now
                values.setdefault((ids[tmdb_id], row["kind"]), {
                    "user_id": ctx.user_id, "movie_id": ids[tmdb_id], "interaction_type": row["kind"],
                    "created_at": min(at, now)})
        imported = 0
        batch = list(values.values())
        for start in range(0, len(batch), BATCH):
            imported += len(session.execute(
                dialect_insert(session, UserMovieInteraction).values(batch[start:start + BATCH])
                .on_conflict_do_nothing(index_elements=["user_id", "movie_id", "interaction_type"])
                .returning(UserMovieInteraction.id)).all())
        if imported:  # the user's cached recommendations are stale now
            bump_recs_version(session, ctx.user_id)
        result = {"rows": total, "matched": len(matched), "imported": imported,
                  "unmatched": unmatched[:MAX_UNMATCHED_SHOWN], "unmatched_count": len(unmatched)}
        if source_down:
            result["note"] = "The movie source was unavailable: some rows may match if imported again later."
        ctx.finish(session, result)
