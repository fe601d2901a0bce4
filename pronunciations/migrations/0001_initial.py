import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import pronunciations.models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PronunciationDictionary",
            fields=[
                ("id", models.CharField(default=pronunciations.models.pronunciation_dictionary_id, editable=False,
                                        max_length=32, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=255)),
                ("rules", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="pronunciation_dictionaries",
                                              to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "pronunciation dictionary",
                "verbose_name_plural": "pronunciation dictionaries",
                "ordering": ["-created_at"],
            },
        ),
    ]
