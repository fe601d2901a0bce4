from django.urls import path
from cvi_site.api import OptionalSlashRouter

from pals.api.views import EnginesView, PalViewSet, VoicesView

router = OptionalSlashRouter()
router.register("v2/pals", PalViewSet, basename="pal")
router.register("v2/personas", PalViewSet, basename="persona")

urlpatterns = [path("v2/engines", EnginesView.as_view(), name="engines"),
               path("v2/voices", VoicesView.as_view(), name="voices"), *router.urls]
