"""Presenters: the one place that turns each resource into the contract's JSON.

One module per resource family; each resource has a presenter (a function, or a method
of a small class when it needs configuration) and, beside it, the colander schema that
describes what it returns. The JSON API, the admin console, the recommender's cached
output and the OpenAPI document (``api/openapi.py``) all use these and nothing else:

- ``movies``: genre, person, movie summary, movie detail, movie page;
- ``users``: user, profile, admin view of a user, session (token pair);
- ``library``: preferences, interaction, recommendation;
- ``audit``: audit log entry (the console's audit page);
- ``blocked``: a blocked title;
- ``paging``: the page of any list.

Presenters return plain dicts; dates and times stay ``date``/``datetime`` objects, which
the JSON renderer writes as ISO 8601 (``api/envelope.json_renderer``) and the console's
templates format as they like. Response schemas are closed: a field a presenter adds
without adding it to its schema fails the tests that check every response against the
document.
"""
