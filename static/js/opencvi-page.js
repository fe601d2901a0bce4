/*!
 * The OpenCVI conversation page's UI (templates/conversations/page.html), no build step.
 *
 * It runs on top of static/js/opencvi-client.js, which must be loaded first, and uses only
 * the public `window.OpenCVI` API (docs/EMBEDDING.md): the join screen (camera/mic preview,
 * device choice, level meter), the call screen (face, self view, status, controls, captions,
 * speaking indicators) and the end screen. An embedder who wants their own UI loads
 * opencvi-client.js alone.
 */
(function (window, document) {
  'use strict';

  var OpenCVI = window.OpenCVI;
  if (!OpenCVI) {
    console.error('OpenCVI: opencvi-page.js needs opencvi-client.js to be loaded before it');
    return;
  }

  /**
   * Binds the conversation page's elements to the client (`client` is window.OpenCVI); the UI
   * only observes the client's state and calls its public API.
   */
  function mountPage(client, config) {
    var $ = function (id) { return document.getElementById(id); };
    var joinScreen = $('opencvi-join'), callScreen = $('opencvi-call'), overScreen = $('opencvi-over');
    if (!joinScreen || !callScreen) return;
    var preview = $('opencvi-preview'), placeholder = $('opencvi-preview-placeholder');
    var camSelect = $('opencvi-camera'), micSelect = $('opencvi-microphone');
    var joinBtn = $('opencvi-join-button'), retryBtn = $('opencvi-retry'), problem = $('opencvi-problem');
    var face = $('opencvi-face'), self = $('opencvi-self'), status = $('opencvi-status');
    var unmute = $('opencvi-unmute'), micBtn = $('opencvi-mic'), camBtn = $('opencvi-cam'), leaveBtn = $('opencvi-leave');
    var replicaName = config.replica_name || 'Replica';
    var meterTimer = null, audioCtx = null;

    if (config.audio_only) {
      $('opencvi-camera-field').hidden = true;
      $('opencvi-preview-box').setAttribute('data-audio-only', '');
      $('opencvi-cam').hidden = true;
      placeholder.textContent = 'Audio-only conversation: only your microphone is used.';
    }
    $('opencvi-caption-replica').querySelector('.who').textContent = replicaName;
    $('opencvi-avatar').textContent = replicaName.charAt(0).toUpperCase();
    $('opencvi-audio-only-name').textContent = replicaName;

    function showProblem(text) {
      problem.textContent = text || '';
      problem.hidden = !text;
    }

    function fillSelect(select, devices, currentId, kindLabel) {
      select.innerHTML = '';
      devices.forEach(function (d, i) {
        var o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || (kindLabel + ' ' + (i + 1));
        if (d.deviceId === currentId) o.selected = true;
        select.appendChild(o);
      });
      if (!devices.length) {
        var none = document.createElement('option');
        none.textContent = 'Not available';
        none.value = '';
        select.appendChild(none);
      }
      select.disabled = devices.length < 2;
    }

    function startMeter(stream) {
      stopMeter();
      var track = stream.getAudioTracks()[0];
      var AC = window.AudioContext || window.webkitAudioContext;
      if (!track || !AC) return;
      try {
        audioCtx = audioCtx || new AC();
        var src = audioCtx.createMediaStreamSource(new MediaStream([track]));
        var analyser = audioCtx.createAnalyser();
        analyser.fftSize = 512;
        src.connect(analyser);
        var buf = new Uint8Array(analyser.fftSize);
        var bar = $('opencvi-meter');
        meterTimer = setInterval(function () {
          analyser.getByteTimeDomainData(buf);
          var peak = 0;
          for (var i = 0; i < buf.length; i++) peak = Math.max(peak, Math.abs(buf[i] - 128));
          bar.style.width = Math.min(100, Math.round(peak / 128 * 250)) + '%';
        }, 100);
      } catch (e) { /* the meter is a nicety */ }
    }

    function stopMeter() {
      if (meterTimer) clearInterval(meterTimer);
      meterTimer = null;
    }

    function runPreview(opts) {
      joinBtn.disabled = true;
      retryBtn.hidden = true;
      showProblem('');
      placeholder.hidden = false;
      if (!config.audio_only) placeholder.textContent = 'Starting your camera…';
      return client.preview(opts).then(function (stream) {
        preview.srcObject = stream;
        placeholder.hidden = stream.getVideoTracks().length > 0;
        if (!config.audio_only && !stream.getVideoTracks().length) {
          placeholder.textContent = 'No camera found: you can still talk (the face will see nothing).';
        }
        startMeter(stream);
        joinBtn.disabled = false;
        return client.devices().then(function (devs) {
          var a = stream.getAudioTracks()[0], v = stream.getVideoTracks()[0];
          fillSelect(micSelect, devs.audio, a && a.getSettings ? a.getSettings().deviceId : '', 'Microphone');
          fillSelect(camSelect, devs.video, v && v.getSettings ? v.getSettings().deviceId : '', 'Camera');
        });
      }, function (err) {
        placeholder.textContent = config.audio_only ? 'Microphone unavailable' : 'Camera and microphone unavailable';
        fillSelect(micSelect, [], '', 'Microphone');
        fillSelect(camSelect, [], '', 'Camera');
        showProblem(err.explanation || String(err));
        retryBtn.hidden = false;
      });
    }

    function chosen() { return { audioDeviceId: micSelect.value || undefined, videoDeviceId: camSelect.value || undefined }; }

    camSelect.addEventListener('change', function () { runPreview(chosen()); });
    micSelect.addEventListener('change', function () { runPreview(chosen()); });
    retryBtn.addEventListener('click', function () { runPreview(chosen()); });
    joinBtn.addEventListener('click', function () {
      if (audioCtx && audioCtx.state === 'suspended') audioCtx.resume();
      client.join(chosen()).catch(function () { /* shown through the state */ });
    });

    // ---- call screen
    function playFace() {
      face.srcObject = client.remoteStream;
      var p = face.play();
      if (p && p.catch) {
        p.catch(function (err) {
          if (err && err.name === 'NotAllowedError') {
            // Autoplay with sound was refused (no user gesture in this frame): play muted, and
            // let one tap turn the sound on.
            face.muted = true;
            face.play().catch(function () {});
            unmute.hidden = false;
          }
        });
      }
    }
    unmute.addEventListener('click', function () {
      face.muted = false;
      face.play().catch(function () {});
      unmute.hidden = true;
    });
    micBtn.addEventListener('click', function () { client.setMicrophoneEnabled(!client.microphoneEnabled); });
    camBtn.addEventListener('click', function () { client.setCameraEnabled(!client.cameraEnabled); });
    leaveBtn.addEventListener('click', function () { client.leave(); });
    $('opencvi-reload').addEventListener('click', function () { location.reload(); });

    client.on('local', function (s) {
      micBtn.setAttribute('aria-pressed', String(s.microphone));
      camBtn.setAttribute('aria-pressed', String(s.camera));
      self.style.visibility = s.camera ? 'visible' : 'hidden';
    });
    client.on('track', function () { playFace(); });

    function showScreen(which) {
      joinScreen.hidden = which !== 'join';
      callScreen.hidden = which !== 'call';
      overScreen.hidden = which !== 'over';
    }

    function showOver(title, text, canRetry) {
      stopMeter();
      $('opencvi-over-title').textContent = title;
      $('opencvi-over-text').textContent = text || '';
      $('opencvi-reload').hidden = !canRetry;
      face.srcObject = null;
      showScreen('over');
    }

    client.on('state', function (s) {
      var detail = s.detail || {};
      switch (s.state) {
        case 'joining':
        case 'connecting':
        case 'connected':
          stopMeter();
          showScreen('call');
          var audioOnly = client.conversation ? client.conversation.audio_only : config.audio_only;
          face.style.opacity = audioOnly ? '0' : '1';
          $('opencvi-audio-only').hidden = !audioOnly;
          self.srcObject = client.localStream;
          self.hidden = !client.localStream || !client.localStream.getVideoTracks().length;
          status.dataset.state = 'connecting';
          status.textContent = s.state === 'connected' ? 'Waiting for ' + replicaName + '…' : 'Connecting…';
          break;
        case 'live':
          status.dataset.state = 'live';
          status.textContent = 'Live';
          break;
        case 'reconnecting':
          status.dataset.state = 'reconnecting';
          status.textContent = 'Reconnecting…';
          break;
        case 'ended':
          showOver('The conversation has ended', detail.message || 'Thank you for talking.', false);
          break;
        case 'left':
          showOver('You left the conversation', 'You can close this page.', false);
          break;
        case 'disconnected':
          if (detail.code === 'lost') { showOver('The call was lost', detail.message, true); break; }
          showOver('Connection lost', (detail.message || 'The connection was lost.') + ' Reload to try joining again.', true);
          break;
        case 'error':
          if (detail.code === 'ended') { showOver('The conversation has ended', '', false); break; }
          if (joinScreen.hidden || detail.code === 'media_failed' || detail.code === 'full' || detail.code === 'unauthorized' ||
              detail.code === 'not_found' || detail.code === 'startup_failed') {
            showOver('Could not join', detail.message || 'Something went wrong.', detail.code !== 'not_found' && detail.code !== 'unauthorized');
          } else {
            showProblem(detail.message);
            retryBtn.hidden = false;
            runPreview(chosen());
          }
          break;
        default:
          break;
      }
    });

    // ---- captions and speaking indicators
    // A final caption stays a while; the user's last words stay up until the reply to them
    // has been spoken (the reply may take a few seconds to start), so a reader sees both.
    var captionTimers = {};
    var captionsOn = config.closed_captions !== false;
    var CAPTION_LINGER_MS = 7000, UNANSWERED_LINGER_MS = 60000;
    function captionEl(role) { return $(role === 'user' ? 'opencvi-caption-user' : 'opencvi-caption-replica'); }
    function hideLater(role, ms) {
      clearTimeout(captionTimers[role]);
      captionTimers[role] = setTimeout(function () { captionEl(role).hidden = true; }, ms);
    }
    var captionOrder = 0;
    function caption(role, text, final, inferenceId) {
      if (!captionsOn) return;
      var el = captionEl(role);
      clearTimeout(captionTimers[role]);
      if (el.hidden || el.dataset.inference !== String(inferenceId)) {
        // A new utterance goes below the other one: the latest words are always at the bottom.
        el.style.order = String(++captionOrder);
        el.dataset.inference = String(inferenceId);
      }
      el.querySelector('.text').textContent = text;
      el.hidden = !text;
      if (role === 'user') {
        if (final) hideLater('user', UNANSWERED_LINGER_MS);
        return;
      }
      var user = captionEl('user');
      if (final) {
        hideLater('replica', CAPTION_LINGER_MS);
        if (!user.hidden) hideLater('user', CAPTION_LINGER_MS);
      } else if (!user.hidden) {
        clearTimeout(captionTimers.user);
      }
    }
    client.on('conversation.utterance.streaming', function (ev) {
      var p = ev.properties || {};
      caption(p.role === 'user' ? 'user' : 'replica', p.speech || '', !!p.final, ev.inference_id);
    });
    // A reply that is late to start (a busy server) shows that the agent is thinking, until it speaks.
    function showLive() {
      if (client.state !== 'live') return;
      status.dataset.state = 'live';
      status.textContent = 'Live';
    }
    client.on('conversation.replica.thinking', function () {
      if (client.state !== 'live') return;
      status.dataset.state = 'thinking';
      status.textContent = replicaName + ' is thinking…';
    });
    client.on('conversation.replica.started_speaking', function () { callScreen.dataset.replicaSpeaking = '1'; showLive(); });
    client.on('conversation.replica.stopped_speaking', function () { callScreen.dataset.replicaSpeaking = '0'; showLive(); });
    client.on('conversation.user.started_speaking', function () { callScreen.dataset.userSpeaking = '1'; });
    client.on('conversation.user.stopped_speaking', function () { callScreen.dataset.userSpeaking = '0'; });

    window.addEventListener('pagehide', function () { client.leave(); });
    runPreview({});
  }

  // ------------------------------------------------------------------ boot
  var config = OpenCVI.config || {};
  if (config.conversation_id) {
    var start = function () { mountPage(OpenCVI, config); };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
  }
})(window, document);
