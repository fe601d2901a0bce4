/* OpenCVI PAL Maker: small progressive enhancements, no framework, no build step.
   Every page works without this script; with it:
   - forms with data-confirm ask first; [data-copy] buttons copy text;
   - the PAL editor shows only the fields that apply, checks JSON as you type, streams
     "Test connection" and plays "Preview voice";
   - face cards and pages with data-face-ws follow training over a WebSocket (pushed by the
     server, never polled);
   - the training upload checks the file before sending it. */
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  /* ------------------------------------------------------------ generic */
  function initConfirm() {
    $all("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
  }

  function initCopy() {
    $all("[data-copy]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var el = $(btn.getAttribute("data-copy"));
        if (!el) return;
        var text = el.textContent.trim();
        var done = function () { btn.textContent = "Copied"; setTimeout(function () { btn.textContent = "Copy"; }, 1500); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done);
        } else {
          var range = document.createRange(); range.selectNodeContents(el);
          var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
          try { document.execCommand("copy"); done(); } catch (e) { /* selected: the person can copy */ }
        }
      });
    });
  }

  /* ------------------------------------------------------------ PAL editor */
  function initEditor() {
    var form = $("#pal-editor");
    if (!form) return;

    // Fields that apply to one choice only (e.g. endpoint fields for an OpenAI-compatible LLM).
    var dependents = $all("[data-show-when]", form);
    function currentValue(name) {
      var checked = form.querySelector('[name="' + name + '"]:checked');
      if (checked) return checked.value;
      var el = form.querySelector('[name="' + name + '"]');
      return el ? el.value : "";
    }
    function applyVisibility() {
      dependents.forEach(function (el) {
        var rule = el.getAttribute("data-show-when").split("=");
        // a field with an error always stays visible, so the error can be read
        el.hidden = currentValue(rule[0]) !== rule[1] && !el.classList.contains("has-error");
      });
    }
    form.addEventListener("change", applyVisibility);
    applyVisibility();

    // JSON fields: say at once when the text is not JSON (the server checks the rest).
    $all("textarea[data-json]", form).forEach(function (ta) {
      var note = document.createElement("div");
      note.className = "help json-note";
      note.setAttribute("aria-live", "polite");
      ta.insertAdjacentElement("afterend", note);
      function check() {
        var text = ta.value.trim();
        if (!text) { note.textContent = ""; ta.removeAttribute("aria-invalid"); return; }
        try { JSON.parse(text); note.textContent = "✓ valid JSON"; note.style.color = "var(--ok)"; ta.removeAttribute("aria-invalid"); }
        catch (e) { note.textContent = "Not valid JSON yet: " + e.message; note.style.color = "var(--bad)"; ta.setAttribute("aria-invalid", "true"); }
      }
      ta.addEventListener("input", check);
      check();
    });

    // An error shown beside a field goes away once the field is edited (the server re-checks on save).
    form.addEventListener("input", function (ev) {
      var field = ev.target.closest && ev.target.closest(".field.has-error");
      if (field) { field.classList.remove("has-error"); field.classList.add("edited"); }
    });

    // Jump to the first section with an error.
    var firstError = $(".has-error", form);
    if (firstError) {
      var details = firstError.closest("details");
      if (details) details.open = true;
      firstError.scrollIntoView({ block: "center" });
      var input = $("input, select, textarea", firstError);
      if (input) input.focus({ preventScroll: true });
    }

    var testBtn = $('[data-action="test-llm"]', form);
    var out = $("#llm-test-output");
    if (testBtn && out) {
      testBtn.addEventListener("click", function () {
        out.textContent = "Connecting…\n";
        testBtn.setAttribute("aria-busy", "true");
        testBtn.disabled = true;
        fetch(form.getAttribute("data-test-llm-url"), {
          method: "POST", body: new FormData(form), credentials: "same-origin",
        }).then(function (resp) {
          out.textContent = "";
          if (!resp.body || !resp.body.getReader) return resp.text().then(function (t) { out.textContent = t; });
          var reader = resp.body.getReader();
          var decoder = new TextDecoder();
          function pump() {
            return reader.read().then(function (r) {
              if (r.done) { out.textContent += decoder.decode(); return; }
              out.textContent += decoder.decode(r.value, { stream: true });
              return pump();
            });
          }
          return pump();
        }).catch(function (err) {
          out.textContent += "\n✗ " + err;
        }).finally(function () {
          testBtn.removeAttribute("aria-busy");
          testBtn.disabled = false;
          out.setAttribute("data-done", "1");
        });
      });
    }

    initCoverage(form);

    var voiceBtn = $('[data-action="preview-voice"]', form);
    var audio = $("#voice-preview");
    var voiceErr = $("#voice-preview-error");
    if (voiceBtn && audio) {
      voiceBtn.addEventListener("click", function () {
        voiceBtn.setAttribute("aria-busy", "true");
        voiceBtn.disabled = true;
        if (voiceErr) voiceErr.textContent = "";
        fetch(form.getAttribute("data-preview-voice-url"), {
          method: "POST", body: new FormData(form), credentials: "same-origin",
        }).then(function (resp) {
          if (!resp.ok) {
            return resp.json().then(function (j) { throw new Error(j.error || ("HTTP " + resp.status)); },
              function () { throw new Error("HTTP " + resp.status); });
          }
          return resp.blob();
        }).then(function (blob) {
          if (audio.src && audio.src.indexOf("blob:") === 0) URL.revokeObjectURL(audio.src);
          audio.src = URL.createObjectURL(blob);
          var played = audio.play();
          if (played && played.catch) played.catch(function () { /* autoplay refused: the controls are there */ });
        }).catch(function (err) {
          if (voiceErr) voiceErr.textContent = "Could not preview: " + err.message;
        }).finally(function () {
          voiceBtn.removeAttribute("aria-busy");
          voiceBtn.disabled = false;
        });
      });
    }
  }

  /* The perception section lists which awareness queries the chosen engine answers; the server
     classifies them (one rule, shared with the engine), asked again as the person types. */
  function initCoverage(form) {
    var box = $("#perception-coverage");
    var url = form.getAttribute("data-coverage-url");
    if (!box || !url) return;
    var timer = null;
    function render(c) {
      box.setAttribute("data-engine", c.engine);
      $("[data-coverage-note]", box).textContent = c.note;
      var list = $("[data-coverage-list]", box);
      list.textContent = "";
      function item(cls, mark, text, why) {
        var li = document.createElement("li");
        li.className = cls;
        var m = document.createElement("span"); m.setAttribute("aria-hidden", "true"); m.textContent = mark;
        var w = document.createElement("span"); w.className = "muted small"; w.textContent = "(" + why + ")";
        li.appendChild(m); li.appendChild(document.createTextNode(" " + text + " ")); li.appendChild(w);
        list.appendChild(li);
      }
      c.answerable.forEach(function (a) { item("ok", "✓", a.query, a.signal); });
      c.unanswerable.forEach(function (q) { item("no", "✗", q, c.engine === "off" ? "not answered" : "not answered: needs vision-llm"); });
      if (!c.answerable.length && !c.unanswerable.length) {
        var li = document.createElement("li"); li.className = "muted small"; li.textContent = "No awareness queries yet.";
        list.appendChild(li);
      }
    }
    function refresh() {
      fetch(url, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (c) { if (c) render(c); })
        .catch(function () { /* the server-rendered list stays */ });
    }
    function schedule(ev) {
      var name = ev.target && ev.target.name;
      if (name !== "pc_visual_awareness_queries" && name !== "pc_perception_model") return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    }
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
  }

  /* ------------------------------------------------------------ face training progress */
  var STATUS_TEXT = { started: "Waiting for a worker…", training: "Training…", ready: "Ready to use.", error: "Training failed." };
  window.__faceUpdates = window.__faceUpdates || [];

  function renderFaceState(root, s) {
    // "Training has started" no longer holds once it has ended (either way).
    if (s.status === "ready" || s.status === "error") $all(".flash.training-started").forEach(function (el) { el.remove(); });
    var bar = $("[data-face-progress]", root);
    var pct = s.status === "ready" ? 100 : Math.max(0, Math.min(100, s.progress || 0));
    if (bar) {
      bar.setAttribute("aria-valuenow", String(pct));
      bar.setAttribute("aria-valuetext", s.status === "ready" ? "ready" : pct + "%");
      $(".bar", bar).style.width = pct + "%";
      bar.classList.toggle("error", s.status === "error");
    }
    var badge = $("[data-face-status]", root);
    if (badge) { badge.textContent = s.status; badge.className = "badge " + s.status; }
    var text = $("[data-face-status-text]", root);
    if (text) text.textContent = s.status === "training" ? "Training… " + pct + "%" : (STATUS_TEXT[s.status] || s.status);
    var errBox = $("[data-face-error]", root);
    if (errBox) {
      errBox.hidden = s.status !== "error";
      if (s.status === "error") {
        $("[data-face-error-message]", errBox).textContent = s.error_message || "Training failed.";
        $("[data-face-error-advice]", errBox).textContent = s.advice || "";
      }
    }
    if (s.status === "ready" && s.thumbnail_url) {
      var img = $("[data-face-thumb]", root);
      var placeholder = $("[data-face-thumb-placeholder]", root);
      if (img) { img.src = s.thumbnail_url; }
      else if (placeholder) {
        img = document.createElement("img");
        img.src = s.thumbnail_url; img.alt = "Thumbnail of the trained face"; img.setAttribute("data-face-thumb", "");
        placeholder.replaceWith(img);
      }
    }
    var note = $("[data-face-live-note]", root);
    if (note && (s.status === "ready" || s.status === "error")) note.textContent = "";
  }

  function watchFace(root) {
    var path = root.getAttribute("data-face-ws");
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var final = false, delay = 1000;
    function connect() {
      var ws = new WebSocket(proto + location.host + path);
      root.setAttribute("data-ws", "connecting");
      ws.onopen = function () { root.setAttribute("data-ws", "open"); delay = 1000; };
      ws.onmessage = function (ev) {
        var s;
        try { s = JSON.parse(ev.data); } catch (e) { return; }
        window.__faceUpdates.push({ face_id: s.face_id, status: s.status, progress: s.progress, t: Date.now() });
        if (s.status === "deleted") { final = true; ws.close(); return; }
        renderFaceState(root, s);
        root.setAttribute("data-status", s.status);
        if (s.status === "ready" || s.status === "error") final = true;
      };
      ws.onclose = function () {
        root.setAttribute("data-ws", "closed");
        // A dropped socket during training reconnects (the server re-sends the state).
        if (!final) { setTimeout(connect, delay); delay = Math.min(delay * 2, 15000); }
      };
    }
    connect();
  }

  function initFaces() { $all("[data-face-ws]").forEach(watchFace); }

  /* ------------------------------------------------------------ the editor's document picker */
  function initDocPicker(box) {
    var input = document.querySelector('[name="document_ids"]');
    if (!input) return;
    function ids() { return input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
    function reflect() {
      var chosen = ids();
      $all("[data-doc-id]", box).forEach(function (cb) { cb.checked = chosen.indexOf(cb.value) >= 0; });
    }
    $all("[data-doc-id]", box).forEach(function (cb) {
      cb.addEventListener("change", function () {
        var chosen = ids().filter(function (id) { return id !== cb.value; });
        if (cb.checked) chosen.push(cb.value);
        input.value = chosen.join(", ");
        input.dispatchEvent(new Event("input", { bubbles: true }));
      });
    });
    input.addEventListener("input", reflect);
    reflect();
  }

  /* ------------------------------------------------------------ documents being read */
  function watchDocuments(table) {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var delay = 1000;
    function render(s) {
      var row = table.querySelector('tr[data-document-id="' + s.document_id + '"]');
      if (!row) return;
      if (s.status === "deleted") { row.remove(); return; }
      var badge = $("[data-document-status]", row), bar = $("[data-document-progress]", row), err = $("[data-document-error]", row);
      badge.textContent = s.status;
      badge.className = "badge " + (s.status === "ready" ? "ready" : s.status === "error" ? "error" : "started");
      bar.hidden = s.status === "ready";
      bar.classList.toggle("error", s.status === "error");
      bar.setAttribute("aria-valuenow", String(s.progress));
      $(".bar", bar).style.width = s.progress + "%";
      err.hidden = s.status !== "error";
      if (s.status === "error") err.textContent = (s.error_message || "It could not be read.") + (s.error_code ? " (" + s.error_code + ")" : "");
      row.setAttribute("data-status", s.status);
    }
    function connect() {
      var ws = new WebSocket(proto + location.host + table.getAttribute("data-documents-ws"));
      ws.onopen = function () { table.setAttribute("data-ws", "open"); delay = 1000; };
      ws.onmessage = function (ev) { try { render(JSON.parse(ev.data)); } catch (e) { /* not for us */ } };
      ws.onclose = function () { table.setAttribute("data-ws", "closed"); setTimeout(connect, delay); delay = Math.min(delay * 2, 15000); };
    }
    connect();
  }

  /* ------------------------------------------------------------ training upload checks */
  var VIDEO_EXT = ["mp4", "webm", "mov", "m4v"], IMAGE_EXT = ["jpg", "jpeg", "png", "webp"];

  /* The frame rate of a video file, read in the browser before it is uploaded: from an MP4/MOV's
     sample table (video samples / track duration), else by playing it muted for a moment and
     timing its frames. Resolves null when neither works. */
  function readSlice(file, start, end) {
    return new Promise(function (resolve, reject) {
      var r = new FileReader();
      r.onload = function () { resolve(new DataView(r.result)); };
      r.onerror = function () { reject(r.error); };
      r.readAsArrayBuffer(file.slice(start, end));
    });
  }
  function boxType(v, o) { return String.fromCharCode(v.getUint8(o + 4), v.getUint8(o + 5), v.getUint8(o + 6), v.getUint8(o + 7)); }
  function boxes(v, start, end) {  // child boxes of a box held in memory: [{type, start, end}]
    var out = [], o = start;
    while (o + 8 <= end) {
      var size = v.getUint32(o), head = 8;
      if (size === 1) { size = v.getUint32(o + 8) * 4294967296 + v.getUint32(o + 12); head = 16; }
      else if (size === 0) size = end - o;
      if (size < head || o + size > end) break;
      out.push({ type: boxType(v, o), start: o + head, end: o + size });
      o += size;
    }
    return out;
  }
  function child(v, box, type) { return boxes(v, box.start, box.end).filter(function (b) { return b.type === type; })[0]; }

  function mp4FrameRate(file) {
    var MAX_MOOV = 64 * 1048576;
    function find(offset) {  // walk the top-level boxes to the movie box
      if (offset + 8 > file.size) return Promise.resolve(null);
      return readSlice(file, offset, offset + 16).then(function (h) {
        var size = h.getUint32(0), type = boxType(h, 0), head = 8;
        if (size === 1) { size = h.getUint32(8) * 4294967296 + h.getUint32(12); head = 16; }
        else if (size === 0) size = file.size - offset;
        if (size < head) return null;
        if (type === "moov") return size > MAX_MOOV ? null : readSlice(file, offset, offset + size);
        return find(offset + size);
      });
    }
    return find(0).then(function (v) {
      if (!v) return null;
      var traks = boxes(v, 8, v.byteLength).filter(function (b) { return b.type === "trak"; });
      for (var i = 0; i < traks.length; i++) {
        var mdia = child(v, traks[i], "mdia"); if (!mdia) continue;
        var hdlr = child(v, mdia, "hdlr");
        if (!hdlr || boxType(v, hdlr.start + 4) !== "vide") continue;  // handler type, after version/flags and pre_defined
        var mdhd = child(v, mdia, "mdhd"), minf = child(v, mdia, "minf");
        var stbl = minf && child(v, minf, "stbl"), stsz = stbl && child(v, stbl, "stsz");
        if (!mdhd || !stsz) return null;
        var version = v.getUint8(mdhd.start), timescale, duration;
        if (version === 1) { timescale = v.getUint32(mdhd.start + 20); duration = v.getUint32(mdhd.start + 24) * 4294967296 + v.getUint32(mdhd.start + 28); }
        else { timescale = v.getUint32(mdhd.start + 12); duration = v.getUint32(mdhd.start + 16); }
        var samples = v.getUint32(stsz.start + 8);
        return samples && timescale && duration ? samples * timescale / duration : null;
      }
      return null;
    }).catch(function () { return null; });
  }

  function playedFrameRate(video) {
    return new Promise(function (resolve) {
      if (!video.requestVideoFrameCallback) { resolve(null); return; }
      var times = [], done = false;
      function finish() {
        if (done) return; done = true; video.pause();
        var gaps = [];
        for (var i = 1; i < times.length; i++) if (times[i] > times[i - 1]) gaps.push(times[i] - times[i - 1]);
        gaps.sort(function (a, b) { return a - b; });
        resolve(gaps.length >= 5 ? 1 / gaps[Math.floor(gaps.length / 2)] : null);
      }
      function onFrame(now, meta) {
        times.push(meta.mediaTime);
        if (times.length >= 30) finish(); else video.requestVideoFrameCallback(onFrame);
      }
      video.requestVideoFrameCallback(onFrame);
      video.muted = true;
      var played = video.play();
      if (played && played.catch) played.catch(finish);
      setTimeout(finish, 4000);
    });
  }

  function videoFrameRate(file, video) {
    return mp4FrameRate(file).then(function (fps) { return fps !== null ? fps : playedFrameRate(video); });
  }

  function initTrainForm() {
    var form = $("#face-train");
    if (!form) return;
    var input = form.querySelector('input[type="file"]');
    var list = $("#file-checks");
    var probe = $("#file-probe");
    var submit = $("#train-submit");
    var blocking = false;

    function item(cls, text) {
      var li = document.createElement("li"); li.className = cls; li.textContent = text; list.appendChild(li);
      if (cls === "bad") blocking = true;
    }
    function mb(n) { return (n / 1048576).toFixed(n < 10485760 ? 1 : 0) + " MB"; }

    input.addEventListener("change", function () {
      list.innerHTML = ""; blocking = false;
      var file = input.files && input.files[0];
      if (!file) return;
      var ext = (file.name.split(".").pop() || "").toLowerCase();
      var max = parseInt(input.getAttribute("data-max-bytes") || "0", 10);
      var isVideo = VIDEO_EXT.indexOf(ext) >= 0, isImage = IMAGE_EXT.indexOf(ext) >= 0;
      if (!isVideo && !isImage) { item("bad", "." + ext + " is not a video (mp4, webm, mov) or a photo (jpg, png, webp)."); return; }
      if (file.size === 0) { item("bad", "The file is empty."); return; }
      if (max && file.size > max) { item("bad", "The file is " + mb(file.size) + "; the limit is " + mb(max) + "."); return; }
      item("ok", (isVideo ? "Video" : "Photo") + ", " + mb(file.size));
      var url = URL.createObjectURL(file);
      if (isVideo) {
        var limits = {
          minS: parseFloat(input.getAttribute("data-min-s") || "0"), maxS: parseFloat(input.getAttribute("data-max-s") || "0"),
          minFps: parseFloat(input.getAttribute("data-min-fps") || "0"), minSide: parseInt(input.getAttribute("data-min-side") || "0", 10)
        };
        probe.onloadedmetadata = function () {
          var d = probe.duration, w = probe.videoWidth, h = probe.videoHeight;
          if (isFinite(d)) {
            if (limits.minS && d < limits.minS) item("bad", "It is " + d.toFixed(1) + " s long; the trainer needs at least " + limits.minS + " s (about one minute is best).");
            else if (limits.maxS && d > limits.maxS) item("bad", "It is " + (d / 60).toFixed(1) + " min long; the limit is " + (limits.maxS / 60) + " min (one minute is enough).");
            else if (d < 20) item("warn", "It is " + d.toFixed(0) + " s long; about one minute trains a better face.");
            else item("ok", d.toFixed(0) + " s long");
          }
          if (w && h) {
            var side = Math.min(w, h);
            if (limits.minSide && side < limits.minSide) item("bad", w + "×" + h + ": too small; record at least 640×480.");
            else item(side < 360 ? "warn" : "ok", w + "×" + h + (side < 360 ? ": low resolution, the face may look soft" : ""));
          }
          videoFrameRate(file, probe).then(function (fps) {
            if (fps === null) item("warn", "The frame rate could not be read here; the server will check it.");
            else if (limits.minFps && fps < limits.minFps) item("bad", fps.toFixed(0) + " frames per second; the trainer needs " + limits.minFps + " or more (record at 25 fps or more).");
            else item("ok", fps.toFixed(0) + " frames per second");
            URL.revokeObjectURL(url);
          });
        };
        probe.onerror = function () { item("warn", "This browser cannot preview the video; the server will check it."); URL.revokeObjectURL(url); };
        probe.src = url;
      } else {
        var img = new Image();
        img.onload = function () {
          var s = Math.min(img.naturalWidth, img.naturalHeight);
          item(s < 256 ? "warn" : "ok", img.naturalWidth + "×" + img.naturalHeight + (s < 256 ? ": small; a larger photo looks better" : ""));
          URL.revokeObjectURL(url);
        };
        img.onerror = function () { item("bad", "This photo cannot be read."); URL.revokeObjectURL(url); };
        img.src = url;
      }
    });

    form.addEventListener("submit", function (ev) {
      if (blocking) { ev.preventDefault(); list.scrollIntoView({ block: "center" }); return; }
      submit.disabled = true; submit.setAttribute("aria-busy", "true");
      $("#upload-status").textContent = "Uploading…";
    });
  }

  /* A link to a collapsed section (e.g. #webhooks after a resend) opens it. */
  function openTargetDetails() {
    var id = location.hash.slice(1);
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") el.open = true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    openTargetDetails();
    initConfirm(); initCopy(); initEditor(); initFaces(); initTrainForm();
    $all("[data-documents-ws]").forEach(watchDocuments);
    $all("[data-doc-picker]").forEach(initDocPicker);
  });
})();
