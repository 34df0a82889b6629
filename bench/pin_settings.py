"""Settings for the comparison app: ours, with the 15-second cookie pin in place of our router."""

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

DATABASE_ROUTERS = ["bench.pin_router.PinRouter"]
MIDDLEWARE = [("bench.pin_router.PinMiddleware" if m == "project.db.middleware.RoutingMiddleware" else m)
              for m in MIDDLEWARE]  # fmt: skip
