from django.urls import re_path

from cvi_site.api import OptionalSlashRouter
from knowledge.api.views import DocumentViewSet, MemoryStoreView

router = OptionalSlashRouter()
router.register("v2/documents", DocumentViewSet, basename="document")

urlpatterns = router.urls + [
    re_path(r"^v2/memories/(?P<store>[^/]+)/?$", MemoryStoreView.as_view(), name="memory-store"),
]
