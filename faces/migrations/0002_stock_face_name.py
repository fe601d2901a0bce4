"""The stock face is called by a person's name ("Eileen"); lists add "(stock)" themselves (it
was "Eileen (stock)", which they showed as "Eileen (stock) (stock)")."""
from django.db import migrations


def forwards(apps, schema_editor):
    from cvi_site.ids import STOCK_FACE_ID

    apps.get_model("faces", "Face").objects.filter(pk=STOCK_FACE_ID, face_name="Eileen (stock)").update(face_name="Eileen")


class Migration(migrations.Migration):
    dependencies = [("faces", "0001_initial"), ("pals", "0002_stock_data")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
