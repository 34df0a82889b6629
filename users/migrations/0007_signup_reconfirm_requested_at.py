from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0006_signup_language"),
    ]

    operations = [
        # Nullable, no default: PostgreSQL adds it without rewriting the table.
        migrations.AddField(
            model_name="signup",
            name="reconfirm_requested_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
