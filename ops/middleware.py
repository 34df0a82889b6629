from ops import views

# The ALB probes each target with its private IP as Host; answering these paths here, before anything
# calls request.get_host(), keeps ALLOWED_HOSTS strict for every other path.
HEALTH_VIEWS = {"/health": views.health, "/health/": views.health, "/ready": views.ready, "/ready/": views.ready}


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None and request.method in {"GET", "HEAD"}:
            return view(request)
        return self.get_response(request)
