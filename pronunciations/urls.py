from cvi_site.api import OptionalSlashRouter
from pronunciations.api import PronunciationDictionaryViewSet

router = OptionalSlashRouter()
router.register("v2/pronunciation-dictionaries", PronunciationDictionaryViewSet, basename="pronunciation-dictionary")

urlpatterns = router.urls
