"""The PAL Maker's Objectives page: the account's objective sets, each drawn as the path a call
takes through it, created and edited as the API's ``data`` list (JSON) with the API's errors shown,
and deleted unless a PAL uses them. The JSON is checked as the API checks a body
(``objectives.api.serializers``); writes go through ``objectives.services``."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from cvi_site.domain import ApplicationError
from objectives import selectors, services
from objectives.api.serializers import objectives_input
from objectives.models import ObjectiveSet

#: what the editor starts with: a three-step graph with a conditional branch
EXAMPLE = [
    {"objective_name": "ask_if_new_patient", "objective_prompt": "Ask whether they have been here before.",
     "output_variables": ["patient_status"],
     "next_conditional_objectives": {"new_patient_intake": "If they have never been here",
                                     "existing_patient_checkin": "If they have been here before"}},
    {"objective_name": "new_patient_intake", "objective_prompt": "Ask for their full name and date of birth.",
     "output_variables": ["full_name", "date_of_birth"]},
    {"objective_name": "existing_patient_checkin", "objective_prompt": "Ask for their patient number.",
     "output_variables": ["patient_number"]},
]


def _without_if(condition: str) -> str:
    """A condition as it reads after "if": "If the patient is new" → "the patient is new"."""
    text = condition.strip()
    return text[3:].lstrip() if text[:3].lower() == "if " else text


def graph_view(objective_set: ObjectiveSet) -> dict[str, Any]:
    """The set as the page draws it: start objective(s), then each objective with where it leads."""
    doc = services.objectives_representation(objective_set)
    steps = []
    for item in doc["data"]:
        steps.append({**item, "next": (
            [{"condition": "", "name": n} for n in item["next_required_objectives"]]
            + [{"condition": _without_if(c), "name": n} for n, c in item["next_conditional_objectives"].items()])})
    return {"set": objective_set, "starts": services.start_objectives(doc["data"]), "steps": steps,
            "pals": services.pals_using(objective_set)}


def _parse(text: str) -> tuple[Any, str]:
    try:
        return json.loads(text or ""), ""
    except ValueError as exc:
        return None, f"Not valid JSON: {exc}"


def _save(request: HttpRequest, write) -> str:  # noqa: ANN001
    """Run a write with the objectives of the posted JSON; the error to show, or ""."""
    data, error = _parse(request.POST.get("data", ""))
    if error:
        return error
    try:
        write(objectives_input(data))
    except ApplicationError as exc:  # InvalidError's message names the fields
        return exc.message
    return ""


@login_required
@require_http_methods(["GET", "POST"])
def objective_list(request: HttpRequest) -> HttpResponse:
    error, text = "", json.dumps(EXAMPLE, indent=2)
    if request.method == "POST":
        text = request.POST.get("data", "")
        created: list[ObjectiveSet] = []
        error = _save(request, lambda items: created.append(services.objectives_create(account=request.user,
                                                                                        data=items)))
        if not error:
            messages.success(request, f"Created objectives {created[0].id}. Link them to a PAL in its editor.")
            return redirect("web:objective_edit", objectives_id=created[0].id)
    sets = [graph_view(s) for s in selectors.objective_set_list(account=request.user)]
    return render(request, "objectives/list.html", {"sets": sets, "error": error, "text": text},
                  status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def objective_edit(request: HttpRequest, objectives_id: str) -> HttpResponse:
    objective_set = get_object_or_404(selectors.objective_set_list(account=request.user), pk=objectives_id)
    error = ""
    text = json.dumps(services.objectives_representation(objective_set)["data"], indent=2, ensure_ascii=False)
    if request.method == "POST":
        text = request.POST.get("data", "")
        error = _save(request, lambda items: services.objectives_replace(objective_set=objective_set, data=items))
        if not error:
            messages.success(request, f"Saved objectives {objective_set.id}.")
            return redirect("web:objective_edit", objectives_id=objective_set.id)
        objective_set = get_object_or_404(selectors.objective_set_list(account=request.user), pk=objectives_id)
    return render(request, "objectives/edit.html", {"g": graph_view(objective_set), "error": error, "text": text},
                  status=400 if error else 200)


@login_required
@require_POST
def objective_delete(request: HttpRequest, objectives_id: str) -> HttpResponse:
    objective_set = get_object_or_404(selectors.objective_set_list(account=request.user), pk=objectives_id)
    try:
        services.objectives_delete(objective_set=objective_set)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("web:objective_edit", objectives_id=objectives_id)
    messages.success(request, f"Deleted objectives {objectives_id}.")
    return redirect("web:objective_list")
