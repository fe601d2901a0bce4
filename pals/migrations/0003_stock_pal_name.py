"""The stock PAL is called "Friendly assistant"; pages add the "stock" badge themselves (it was
"Friendly assistant (stock)", shown as "Friendly assistant (stock) stock")."""
from django.db import migrations


def forwards(apps, schema_editor):
    from cvi_site.ids import STOCK_PAL_ID

    apps.get_model("pals", "Pal").objects.filter(
        pk=STOCK_PAL_ID, pal_name="Friendly assistant (stock)").update(pal_name="Friendly assistant")


class Migration(migrations.Migration):
    dependencies = [("pals", "0002_stock_data")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
