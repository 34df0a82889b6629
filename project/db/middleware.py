from project.db import state


class RoutingMiddleware:
    """Give each request its own routing scope, so one request's writes never pin another's reads."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = state.begin_request()
        try:
            return self.get_response(request)
        finally:
            state.end_request(token)
