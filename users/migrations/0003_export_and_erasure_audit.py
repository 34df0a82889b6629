
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('users', '0002_search_and_filter_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='signup',
            options={'ordering': ['-created_at', '-id'], 'permissions': [('export_signup', "Can export signups (CSV of the list, one person's data as JSON)"), ('erase_signup', "Can erase a person's signup (anonymise it)")]},
        ),
        migrations.CreateModel(
            name='Erasure',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('signup_id', models.PositiveBigIntegerField(db_index=True)),
                ('username', models.CharField(max_length=150)),
                ('erased_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-erased_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='SignupExport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('csv', 'CSV of the list'), ('person', 'one person (JSON)')], max_length=10)),
                ('username', models.CharField(max_length=150)),
                ('started_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('row_count', models.PositiveBigIntegerField(default=0)),
                ('filters', models.JSONField(blank=True, default=dict)),
                ('complete', models.BooleanField(default=False)),
                ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'export',
                'ordering': ['-started_at', '-id'],
            },
        ),
    ]
