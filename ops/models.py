from django.db import models


class OpsAccess(models.Model):
    """No table: it only carries the permission to see /ops/ (an unmanaged model keeps its content type)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_ops_dashboard", "Can view the ops dashboard")]

    def __str__(self) -> str:
        return "ops access"
