from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0003_conversation_public_base_url"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="enable_dynamic_greeting",
            field=models.BooleanField(default=False),
        ),
    ]
