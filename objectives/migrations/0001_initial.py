import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import objectives.models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ObjectiveSet",
            fields=[
                ("id", models.CharField(default=objectives.models.objectives_id, editable=False, max_length=32,
                                        primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="objective_sets", to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "objective set", "ordering": ["-created_at"]},
        ),
        migrations.CreateModel(
            name="Objective",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("position", models.PositiveSmallIntegerField()),
                ("objective_name", models.CharField(max_length=100)),
                ("objective_prompt", models.TextField()),
                ("confirmation_mode", models.CharField(choices=[("auto", "Auto"), ("manual", "Manual")], default="auto",
                                                       max_length=8)),
                ("output_variables", models.JSONField(blank=True, default=list)),
                ("modality", models.CharField(choices=[("verbal", "Verbal"), ("visual", "Visual")], default="verbal",
                                              max_length=8)),
                ("next_required_objectives", models.JSONField(blank=True, default=list)),
                ("next_conditional_objectives", models.JSONField(blank=True, default=dict)),
                ("callback_url", models.URLField(blank=True, max_length=2000)),
                ("objective_set", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                    related_name="objectives", to="objectives.objectiveset")),
            ],
            options={"ordering": ["objective_set", "position"]},
        ),
        migrations.AddConstraint(
            model_name="objective",
            constraint=models.UniqueConstraint(fields=("objective_set", "objective_name"),
                                               name="objective_name_unique_in_set"),
        ),
        migrations.AddConstraint(
            model_name="objective",
            constraint=models.UniqueConstraint(fields=("objective_set", "position"),
                                               name="objective_position_unique_in_set"),
        ),
    ]
