import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0008_queue_signup_and_finished_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="SnsMessage",
            fields=[
                ("message_id", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("received_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
        ),
    ]
