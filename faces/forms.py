"""Forms of the face pages. The checks here are only about the form itself (a file was
chosen, consent was given); what a training file must be is decided by ``faces.services``
(type and size, at upload) and ``faces.training`` (duration, fps, one face, ...)."""
from __future__ import annotations

from django import forms
from django.conf import settings

ACCEPT = "video/mp4,video/webm,video/quicktime,.mp4,.webm,.mov,.m4v,image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"


class FaceTrainForm(forms.Form):
    face_name = forms.CharField(label="Name", max_length=200, required=False,
                                widget=forms.TextInput(attrs={"placeholder": "e.g. Ada, front desk"}),
                                help_text="How this face is listed. You can rename it later.")
    file = forms.FileField(
        label="Training video or photo",
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
        help_text="A one-minute video (mp4, webm or mov) trains the most lifelike face; a single clear "
                  "photo (jpg, png, webp) also works.",
    )
    consent = forms.BooleanField(
        label="I am the person in this recording, or I have their permission to create an AI likeness of them.",
        required=True,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from faces.training import probe

        # The page checks a file against the trainer's own limits before uploading it (palmaker.js).
        self.fields["file"].widget.attrs.update({
            "data-max-bytes": str(settings.MAX_UPLOAD_BYTES), "data-min-s": f"{probe.MIN_S:g}",
            "data-max-s": f"{probe.MAX_S:g}", "data-min-fps": f"{probe.MIN_FPS:g}", "data-min-side": str(probe.MIN_SIDE),
        })


class FaceRenameForm(forms.Form):
    face_name = forms.CharField(label="Name", max_length=200)
