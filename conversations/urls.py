from cvi_site.api import OptionalSlashRouter

from conversations.api.views import ConversationViewSet

router = OptionalSlashRouter()
router.register("v2/conversations", ConversationViewSet, basename="conversation")

urlpatterns = [*router.urls]
