"""Stock data with stable ids: the default PAL and the stock face it uses (defined in
``pals.stock``). The stock face's render assets are built by ``manage.py setup_opencvi``
(``make run`` and ``make test`` call it); until then it stays ``started``.
"""
from django.db import migrations


def forwards(apps, schema_editor):
    from pals.stock import ensure_stock

    ensure_stock(apps.get_model("pals", "Pal"), apps.get_model("faces", "Face"), update=True)


def backwards(apps, schema_editor):
    from cvi_site.ids import STOCK_PAL_ID

    apps.get_model("pals", "Pal").objects.filter(pk=STOCK_PAL_ID).delete()


class Migration(migrations.Migration):
    dependencies = [("pals", "0001_initial"), ("faces", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
