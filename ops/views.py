from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from ops.health import run_checks, summary


@never_cache
def health(request):
    """Liveness: the process answers. Touches no database, so a database outage never restarts tasks."""
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
def ready(request):
    """Readiness for the load balancer: 200 while the primary is reachable, 503 when it is not."""
    doc = summary(run_checks())
    return JsonResponse(doc, status=503 if doc["status"] == "unavailable" else 200)
