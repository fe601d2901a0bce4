from cvi_site.api import OptionalSlashRouter
from guardrails.api.views import GuardrailsViewSet

router = OptionalSlashRouter()
router.register("v2/guardrails", GuardrailsViewSet, basename="guardrails")

urlpatterns = router.urls
