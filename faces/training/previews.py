"""A trained face's thumbnail and preview video, made with the renderer (training uses the
renderer here; the renderer never imports training)."""
from __future__ import annotations

from pathlib import Path

import cv2

from faces.assets import FaceAssets


def write_previews(out_dir: str | Path, assets: FaceAssets, *, seconds: float = 3.0) -> None:
    """``thumbnail.jpg`` and a short silent ``preview.mp4`` (H.264) of the face: a second
    listening, then talking."""
    import fractions

    import av

    from faces.mouth import synthetic_speech_chunk
    from faces.renderer import FaceRendererEngine

    out_dir = Path(out_dir)
    thumb = cv2.cvtColor(assets.frames[0], cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(out_dir / "thumbnail.jpg"), cv2.resize(thumb, (256, 256), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 88])
    renderer = FaceRendererEngine(assets)
    n = int(seconds * 25)
    with av.open(str(out_dir / "preview.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 256
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "26"}
        for i in range(n):
            if i == 25:
                renderer.push_audio(synthetic_speech_chunk((n - 30) * 40.0))
            rgb = renderer.next_frame(i * 40.0)
            frame = av.VideoFrame.from_ndarray(cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA),
                                               format="rgb24")
            frame.pts = i
            frame.time_base = fractions.Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
