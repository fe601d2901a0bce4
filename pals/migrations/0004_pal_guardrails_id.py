from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("pals", "0003_stock_pal_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="pal",
            name="guardrails_id",
            field=models.CharField(blank=True, max_length=32),
        ),
    ]
