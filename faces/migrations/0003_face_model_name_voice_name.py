from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("faces", "0002_stock_face_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="face",
            name="model_name",
            field=models.CharField(default="phoenix-4", max_length=32),
        ),
        migrations.AddField(
            model_name="face",
            name="voice_name",
            field=models.CharField(blank=True, max_length=200),
        ),
    ]
