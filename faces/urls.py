from cvi_site.api import OptionalSlashRouter

from faces.api.views import FaceViewSet

router = OptionalSlashRouter()
router.register("v2/faces", FaceViewSet, basename="face")
router.register("v2/replicas", FaceViewSet, basename="replica")

urlpatterns = router.urls
