from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0009_snsmessage"),
    ]

    operations = [
        # db_default: adding the column rewrites nothing and old rows read 0, which the links already mailed
        # (which carry no version) stand for.
        migrations.AddField(
            model_name="signup",
            name="link_version",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
    ]
