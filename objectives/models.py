"""Objectives (hosted shape): a set of steps a PAL works through in a call, each with a prompt,
the variables it collects, and where the conversation goes once it is done. A PAL links one set
by ``objectives_id``; ``objectives.services`` checks that each set is a well-formed graph."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from cvi_site.ids import new_id


def objectives_id() -> str:
    return new_id("o")


class ObjectiveSet(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=objectives_id, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="objective_sets")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "objective set"

    def __str__(self) -> str:
        return self.id


class Objective(models.Model):
    class ConfirmationMode(models.TextChoices):
        AUTO = "auto"
        MANUAL = "manual"

    class Modality(models.TextChoices):
        VERBAL = "verbal"
        VISUAL = "visual"

    objective_set = models.ForeignKey(ObjectiveSet, on_delete=models.CASCADE, related_name="objectives")
    #: the objective's place in the set's ``data`` list (what JSON Patch paths such as /data/0 name)
    position = models.PositiveSmallIntegerField()
    objective_name = models.CharField(max_length=100)
    objective_prompt = models.TextField()
    confirmation_mode = models.CharField(max_length=8, choices=ConfirmationMode.choices,
                                         default=ConfirmationMode.AUTO)
    output_variables = models.JSONField(default=list, blank=True)
    modality = models.CharField(max_length=8, choices=Modality.choices, default=Modality.VERBAL)
    #: names of objectives in the same set that follow unconditionally (at most one of these two is set)
    next_required_objectives = models.JSONField(default=list, blank=True)
    #: {objective name: condition}: the first whose condition holds follows
    next_conditional_objectives = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)

    class Meta:
        ordering = ["objective_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["objective_set", "objective_name"], name="objective_name_unique_in_set"),
            models.UniqueConstraint(fields=["objective_set", "position"], name="objective_position_unique_in_set"),
        ]

    def __str__(self) -> str:
        return self.objective_name
