"""Account pages of the PAL Maker: sign-in/out (Django's auth views with our templates), the
account home, and the API keys page (create shown once, name, revoke; allowed embed origins).
Writes go through ``cvi_site.services``."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from cvi_site import selectors, services

#: the session key holding a just-created secret until the next page shows it, once
NEW_KEY_SESSION = "opencvi_new_api_key"


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    """POST only (Django 5): a link cannot sign anyone out."""


@login_required
def home(request: HttpRequest) -> HttpResponse:
    from conversations.models import Conversation
    from conversations.selectors import conversation_list
    from faces.models import Face
    from faces.selectors import face_list
    from pals.selectors import pal_list

    account = request.user
    pals = pal_list(account=account)
    faces = face_list(account=account)
    conversations = conversation_list(account=account)
    recent = list(conversations[:5])
    context = {
        "pal_count": pals.filter(account=account).count(),
        "stock_pal_count": pals.filter(account__isnull=True).count(),
        "face_count": faces.filter(account=account).count(),
        "ready_faces": faces.filter(status=Face.Status.READY).count(),
        "training_faces": faces.filter(account=account, status__in=[Face.Status.STARTED, Face.Status.TRAINING]).count(),
        "live_count": conversations.filter(status=Conversation.Status.ACTIVE).count(),
        "conversation_count": conversations.count(),
        "recent": recent,
        "pals": list(pals[:4]),
        "key_count": selectors.api_key_list(account=account).filter(revoked_at__isnull=True).count(),
        "limit": selectors.account_conversation_limit(account=account),
    }
    return render(request, "account/home.html", context)


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    account = request.user
    new_key = request.session.pop(NEW_KEY_SESSION, None)
    origins_error = None
    origins_value = "\n".join(account.allowed_embed_origins or [])
    if request.method == "POST" and request.POST.get("action") == "create":
        name = (request.POST.get("name") or "").strip()[:100]
        created = services.api_key_create(account=account, name=name)
        # Shown on the next page only (Post/Redirect/Get), never stored in clear.
        request.session[NEW_KEY_SESSION] = {"raw": created.raw_key, "name": name, "prefix": created.api_key.prefix}
        return redirect("web:api_keys")
    if request.method == "POST" and request.POST.get("action") == "origins":
        origins_value = request.POST.get("origins", "")
        try:
            services.account_update_embed_origins(
                account=account, origins=origins_value.replace(",", "\n").splitlines())
        except ValidationError as exc:
            origins_error = " ".join(exc.messages)
        else:
            messages.success(request, "Saved the allowed embed origins.")
            return redirect("web:api_keys")
    return render(request, "account/api_keys.html", {
        "keys": list(selectors.api_key_list(account=account)),
        "new_key": new_key,
        "origins_value": origins_value,
        "origins_error": origins_error,
        "api_base": request.build_absolute_uri("/").rstrip("/"),
    }, status=400 if origins_error else 200)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = selectors.api_key_list(account=request.user).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key")
    services.api_key_revoke(api_key=key)
    messages.success(request, f"Revoked the key {key.prefix}…; requests using it now get 401.")
    return redirect("web:api_keys")


@login_required
@require_POST
def webhook_resend(request: HttpRequest, delivery_id: int) -> HttpResponse:
    """Send one of the account's webhooks again (a new round of tries), then back to its page."""
    from cvi_site.webhooks import webhook_resend as resend

    delivery = selectors.webhook_deliveries_of(account=request.user).filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404("No such webhook")
    resend(delivery=delivery)
    messages.success(request, f"Sending {delivery.event_type} to {delivery.url} again.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = "web:home"
    return redirect(back)
