"""The PAL Maker's Guardrails page: the account's guardrails (on their own and in legacy sets),
created and edited as the API's JSON with the API's errors shown, and deleted unless a PAL links
them. The JSON is checked as the API checks a body (``guardrails.api.serializers``); writes go
through ``guardrails.services``."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from cvi_site.domain import ApplicationError
from guardrails import selectors, services
from guardrails.api.serializers import guardrail_input, guardrail_set_input
from guardrails.models import Guardrail, GuardrailSet

EXAMPLE = {"guardrail_name": "no_medical_advice",
           "guardrail_prompt": "Never give medical advice; suggest speaking to a doctor instead.",
           "modality": "verbal", "tags": ["health"], "app_message": True}


def _target(request: HttpRequest, guardrails_id: str) -> Guardrail | GuardrailSet:
    found: Any = selectors.guardrail_get(account=request.user, guardrail_uuid=guardrails_id) \
        or selectors.guardrail_set_get(account=request.user, guardrails_id=guardrails_id)
    if found is None:
        raise Http404("No such guardrail")
    return found


def _run(text: str, write) -> str:  # noqa: ANN001
    """Run a write with the posted JSON; the error to show, or ""."""
    try:
        data = json.loads(text or "")
    except ValueError as exc:
        return f"Not valid JSON: {exc}"
    try:
        write(data)
    except ApplicationError as exc:  # InvalidError's message names the fields
        return exc.message
    return ""


def _editable(target: Guardrail | GuardrailSet) -> str:
    """What the editor shows: one guardrail's fields, or a set's data list (uuids kept)."""
    if isinstance(target, Guardrail):
        value: Any = {k: v for k, v in services.guardrail_item(target).items() if k != "guardrail_uuid"}
    else:
        value = services.guardrail_set_representation(target)["data"]
    return json.dumps(value, indent=2, ensure_ascii=False)


@login_required
@require_http_methods(["GET", "POST"])
def guardrail_list(request: HttpRequest) -> HttpResponse:
    error, text, name = "", json.dumps(EXAMPLE, indent=2), ""
    if request.method == "POST":
        text, name = request.POST.get("data", ""), request.POST.get("name", "")

        def create(data: Any) -> None:
            # as the API: an object is one guardrail, a list the data of a (legacy) set
            if isinstance(data, list):
                services.guardrail_set_create(account=request.user,
                                              data=guardrail_set_input({"name": name, "data": data}))
            else:
                services.guardrail_create(account=request.user, data=guardrail_input(data))

        error = _run(text, create)
        if not error:
            messages.success(request, "Created. Link it to a PAL in its editor (Guardrails).")
            return redirect("web:guardrail_list")
    account = request.user
    return render(request, "guardrails/list.html", {
        "sets": list(selectors.guardrail_set_list(account=account)),
        "single": list(selectors.guardrail_list(account=account).filter(guardrail_set__isnull=True)),
        "error": error, "text": text, "name": name}, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def guardrail_edit(request: HttpRequest, guardrails_id: str) -> HttpResponse:
    target = _target(request, guardrails_id)
    is_set = isinstance(target, GuardrailSet)
    error, text = "", _editable(target)
    name = target.name if is_set else ""
    if request.method == "POST":
        text, name = request.POST.get("data", ""), request.POST.get("name", "")
        if is_set:
            error = _run(text, lambda data: services.guardrail_set_replace(guardrail_set=target, name=name, data=data,
                                                                           validate=guardrail_set_input))
        else:
            error = _run(text, lambda data: services.guardrail_replace(guardrail=target, data=data,
                                                                       validate=guardrail_input))
        if not error:
            messages.success(request, "Saved.")
            return redirect("web:guardrail_edit", guardrails_id=guardrails_id)
    uuids = [str(g.uuid) for g in target.guardrails.all()] if is_set else [str(target.uuid)]
    pals = services.pals_linking(account_id=request.user.pk, guardrails_id=target.id if is_set else None, uuids=uuids)
    return render(request, "guardrails/edit.html", {
        "target": target, "is_set": is_set, "key": guardrails_id, "pals": pals,
        "error": error, "text": text, "name": name}, status=400 if error else 200)


@login_required
@require_POST
def guardrail_delete(request: HttpRequest, guardrails_id: str) -> HttpResponse:
    target = _target(request, guardrails_id)
    try:
        if isinstance(target, GuardrailSet):
            services.guardrail_set_delete(guardrail_set=target)
        else:
            services.guardrail_delete(guardrail=target)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("web:guardrail_edit", guardrails_id=guardrails_id)
    messages.success(request, "Deleted.")
    return redirect("web:guardrail_list")
