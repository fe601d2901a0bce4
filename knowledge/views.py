"""The PAL Maker's Knowledge page: the account's documents (add from a file, a URL or a website;
live progress; delete) and its memory stores (read, forget one fact or all). Writes go through
``knowledge.services``."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cvi_site.domain import ApplicationError
from cvi_site.validators import outbound_url_problem
from knowledge import selectors, services
from knowledge.models import Memory


class DocumentForm(forms.Form):
    file = forms.FileField(required=False, label="A file",
                           help_text="PDF, DOCX, PPTX, TXT, Markdown, HTML, CSV or XLSX, up to 50 MB.")
    document_url = forms.URLField(required=False, label="…or a URL", assume_scheme="https",
                                  help_text="A file or a web page on the internet.")
    crawl = forms.BooleanField(required=False, label="Read the whole website from this URL")
    depth = forms.IntegerField(required=False, min_value=1, max_value=10, initial=1, label="Links deep")
    max_pages = forms.IntegerField(required=False, min_value=1, max_value=100, initial=10, label="Pages at most")
    document_name = forms.CharField(required=False, max_length=300, label="Name")
    tags = forms.CharField(required=False, max_length=500, label="Tags",
                           help_text="Comma-separated; a PAL or conversation can use every document with a tag.")

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("document_url")):
            raise forms.ValidationError("Choose a file or give a URL (one of them).")
        problem = outbound_url_problem(data["document_url"]) if data.get("document_url") else None
        if problem:
            self.add_error("document_url", problem)
        return data


@login_required
def knowledge_page(request: HttpRequest) -> HttpResponse:
    form = DocumentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        v = form.cleaned_data
        try:
            document = services.document_create(
                account=request.user, document_url=v.get("document_url") or "", upload=v.get("file"),
                document_name=v.get("document_name") or "",
                tags=[t.strip() for t in (v.get("tags") or "").split(",") if t.strip()],
                crawl={"depth": v.get("depth") or 1, "max_pages": v.get("max_pages") or 10} if v.get("crawl") else None)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Reading {document.document_name}: its progress shows below.")
            return redirect("web:knowledge")
    stores = (Memory.objects.filter(account=request.user).values("store").annotate(facts=Count("id")).order_by("store"))
    return render(request, "knowledge/page.html", {
        "form": form, "documents": list(selectors.document_list(account=request.user)),
        "stores": list(stores)}, status=400 if form.errors else 200)


@login_required
@require_POST
def document_delete(request: HttpRequest, document_id: str) -> HttpResponse:
    document = get_object_or_404(selectors.document_list(account=request.user), pk=document_id)
    services.document_delete(document=document)
    messages.success(request, f"Deleted {document.document_name}.")
    return redirect("web:knowledge")


@login_required
def memory_store(request: HttpRequest, store: str) -> HttpResponse:
    memories = selectors.memory_list(account=request.user, store=store)
    if request.method == "POST":
        if request.POST.get("memory_id"):
            memories.filter(pk=request.POST["memory_id"]).delete()
            messages.success(request, "Forgot that fact.")
            return redirect("web:memory_store", store=store)
        memories.delete()
        messages.success(request, f"Forgot everything in {store}.")
        return redirect("web:knowledge")
    return render(request, "knowledge/memories.html", {"store": store, "memories": list(memories)})
