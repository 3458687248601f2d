"""The JSON API (/api/*): Cornice services over the shared services."""


def includeme(config):
    config.include(".errors")
    config.include(".cached")
    config.include(".openapi")
    config.include(".docs")
    config.scan(".auth")
    config.scan(".user")
    config.scan(".admin")
    config.scan(".blocked")
    config.scan(".jobs")
    config.scan(".portability")
    config.scan(".library")
    config.scan(".movies")
    config.scan(".movie_detail")  # after .movies: /api/movies/search is not a movie id
    config.scan(".ops")
    config.scan(".openapi")
    config.scan(".docs")
