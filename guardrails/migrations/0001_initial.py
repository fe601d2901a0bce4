import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import guardrails.models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="GuardrailSet",
            fields=[
                ("id", models.CharField(default=guardrails.models.guardrails_id, editable=False, max_length=32,
                                        primary_key=True, serialize=False)),
                ("name", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="guardrail_sets", to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "guardrail set", "ordering": ["-created_at"]},
        ),
        migrations.CreateModel(
            name="Guardrail",
            fields=[
                ("uuid", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("position", models.PositiveSmallIntegerField(default=0)),
                ("guardrail_name", models.CharField(max_length=100)),
                ("guardrail_prompt", models.TextField(max_length=1000)),
                ("modality", models.CharField(choices=[("verbal", "Verbal"), ("visual", "Visual")], default="verbal",
                                              max_length=8)),
                ("callback_url", models.URLField(blank=True, max_length=2000)),
                ("tags", models.JSONField(blank=True, default=list)),
                ("app_message", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="guardrails",
                                              to=settings.AUTH_USER_MODEL)),
                ("guardrail_set", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                                    related_name="guardrails", to="guardrails.guardrailset")),
            ],
            options={"ordering": ["guardrail_set", "position", "created_at"]},
        ),
        migrations.AddConstraint(
            model_name="guardrail",
            constraint=models.UniqueConstraint(fields=("guardrail_set", "guardrail_name"),
                                               name="guardrail_name_unique_in_set"),
        ),
    ]
