"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""
from .interaction import INTERACTION_TYPES, UserMovieInteraction  # noqa: F401
from .meta import Base  # noqa: F401
from .audit import AuditLogEntry  # noqa: F401
from .movie import Genre, Movie, MovieSimilarity, movie_genres  # noqa: F401
from .preference import UserActorPreference, UserGenrePreference, UserMoviePreference  # noqa: F401
from .token import AccountToken, RefreshToken  # noqa: F401
from .user import ROLE_NAMES, Role, User, user_roles  # noqa: F401
from .app_meta import MOVIE_ID_SPACE, AppMeta  # noqa: F401
from .console_session import ConsoleSession  # noqa: F401
from .blocked_movie import BlockedMovie  # noqa: F401
from .jobs import JOB_KINDS, JOB_STATES, Job, RecommenderModel, ServedRecommendation  # noqa: F401
