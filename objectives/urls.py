from cvi_site.api import OptionalSlashRouter
from objectives.api.views import ObjectivesViewSet

router = OptionalSlashRouter()
router.register("v2/objectives", ObjectivesViewSet, basename="objectives")

urlpatterns = router.urls
