"""The page of any list: ``{"results", "page", "per_page", "total_pages", "total_results"}``."""
from __future__ import annotations


def page(results: list, page: int, per_page: int, total_results: int, total_pages: int | None = None) -> dict:
    if total_pages is None:
        total_pages = (total_results + per_page - 1) // per_page if total_results else 0
    return {
        "results": results,
        "page": page,
        "per_page": per_page,
        "total_pages": total_pages,
        "total_results": total_results,
    }


def of(items_page, present) -> dict:
    """A ``services.users.Page`` of model objects as a page of ``present(item)``."""
    return page([present(item) for item in items_page.items], items_page.page, items_page.per_page,
                items_page.total)
