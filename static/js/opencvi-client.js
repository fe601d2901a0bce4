/*!
 * OpenCVI conversation client (no build step). Exposes `window.OpenCVI`.
 *
 * The API (docs/EMBEDDING.md has the long form):
 *   OpenCVI.join({audioDeviceId, videoDeviceId})    -> Promise (resolves when the WebSocket joined
 *                                                      and the offer/answer are done)
 *   OpenCVI.leave()
 *   OpenCVI.respond(text)  .interrupt()  .echo(text)  .overwriteContext(text)  .appendContext(text)
 *   OpenCVI.sensitivity({pause, interrupt})  .toolResult(id, output, status)
 *   OpenCVI.setMicrophoneEnabled(bool)  .setCameraEnabled(bool)
 *   OpenCVI.preview({audioDeviceId, videoDeviceId}) -> Promise<MediaStream>   .devices()
 *   OpenCVI.on(type, fn) -> unsubscribe;  .off(type, fn)
 *       type: a protocol event_type ("conversation.utterance", "system.replica_joined", ...),
 *       "event" (every protocol event), "state" ({state, detail}), "track" ({track, stream}),
 *       "local" ({microphone, camera}: mute/camera changes), or "*" (everything: fn(type, payload)).
 *   OpenCVI.state: idle | previewing | ready | joining | connecting | connected | live |
 *                  reconnecting | left | ended | disconnected | error
 *       A live call whose connection drops goes to "reconnecting": the client makes a new peer
 *       connection (and, if the WebSocket dropped too, joins again) for up to RECONNECT_GRACE_MS;
 *       the server keeps the conversation for participant_left_timeout after the last one left.
 *   OpenCVI.microphoneEnabled  .cameraEnabled  .localStream  .remoteStream  .conversation  .config
 *
 * Inside an iframe the same commands arrive by postMessage from the embedding page
 * ({"opencvi": "respond", "text": "..."}) when its origin is allowed, and every event is posted
 * to it ({"opencvi": "event", "event": {...}}); see static/js/opencvi-embed.js.
 *
 * This file is the client alone and works without the conversation page; the page's UI
 * (join, call and end screens) is static/js/opencvi-page.js, loaded after it.
 *
 * Transport: a WebSocket (/ws/conversations/<id>/?t=<token>) for joining, signalling and a
 * mirror of the events; one RTCPeerConnection with the mic, the camera and a data channel
 * named "opencvi" that carries the interactions protocol both ways. The server (aiortc) does
 * no trickle ICE, so the offer is sent once gathering is complete.
 */
(function (window, document) {
  'use strict';

  var DATA_CHANNEL_LABEL = 'opencvi';
  var DATA_CHANNEL_MAX = 60000;           // aiortc's SCTP limit is ~64 KiB; larger goes over the WebSocket
  var PING_INTERVAL_MS = 5000;            // the server closes a data channel that is silent for 20 s
  var ICE_GATHER_TIMEOUT_MS = 5000;
  var JOIN_TIMEOUT_MS = 60000;            // the first join of a process loads models
  var SEEN_EVENTS_MAX = 500;
  var RECONNECT_GRACE_MS = 30000;         // a live call tries to come back this long before it is lost
  var RECONNECT_RETRY_MS = 1500;
  var DISCONNECTED_WAIT_MS = 4000;        // ICE "disconnected" this long counts as a drop

  var SHUTDOWN_TEXT = {
    'max_call_duration reached': 'The conversation reached its time limit.',
    'participant_left_timeout reached': 'Everyone left, so the conversation ended.',
    'participant_absent_timeout reached': 'Nobody joined in time, so the conversation ended.',
    'end_conversation_endpoint_hit': 'The conversation was ended by its host.',
    'exception_encountered_during_conversation_startup': 'The conversation could not start because of a server problem.',
    'server_at_capacity': 'The server was holding as many calls as it could, so this conversation could not start.'
  };

  var JOIN_ERROR_TEXT = {
    not_found: 'There is no conversation at this address.',
    unauthorized: 'This conversation is private and the link has no valid meeting token.',
    ended: 'This conversation has ended.',
    full: 'This conversation is full: the people it allows are already in it.',
    startup_failed: 'The conversation could not start because of a server problem. Please try again later.',
    server_at_capacity: 'The server is holding as many calls as it can right now, so this conversation could ' +
      'not start. Please start a new one in a few minutes.'
  };

  // ------------------------------------------------------------------ helpers
  function readConfig() {
    var el = document.getElementById('opencvi-config');
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function inIframe() {
    try { return window.self !== window.top; } catch (e) { return true; }
  }

  function permissionsPolicyAllows(feature) {
    var policy = document.permissionsPolicy || document.featurePolicy;
    if (!policy || typeof policy.allowsFeature !== 'function') return true;
    try { return policy.allowsFeature(feature); } catch (e) { return true; }
  }

  /** An origin allowed by a list of origins, where "https://*.example.com" matches subdomains. */
  function originAllowed(origin, allowed) {
    if (!origin || origin === 'null') return false;
    for (var i = 0; i < allowed.length; i++) {
      var a = allowed[i];
      if (a === origin) return true;
      var star = a.indexOf('://*.');
      if (star > 0) {
        var scheme = a.slice(0, star + 3);
        var rest = a.slice(star + 4);  // ".example.com[:port]"
        if (origin.indexOf(scheme) === 0 && origin.length > scheme.length + rest.length &&
            origin.slice(-rest.length) === rest) return true;
      }
    }
    return false;
  }

  /** A person-readable explanation of a getUserMedia failure. */
  function explainMediaError(err) {
    var name = err && err.name;
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return 'Your browser only allows the camera and microphone on secure pages. Open this link with https:// (or on localhost).';
    }
    if (name === 'NotAllowedError' || name === 'PermissionDeniedError' || name === 'SecurityError') {
      if (inIframe() && (!permissionsPolicyAllows('camera') || !permissionsPolicyAllows('microphone'))) {
        return 'The website showing this conversation has not allowed it to use your camera and microphone. ' +
          '(Its developer needs to add allow="camera; microphone" to the iframe.)';
      }
      return 'Camera and microphone access is blocked for this page. Click the camera icon in your browser\'s ' +
        'address bar (or the site settings), allow the camera and microphone, then press Try again.';
    }
    if (name === 'NotFoundError' || name === 'DevicesNotFoundError') {
      return 'No microphone or camera was found. Connect one (or check that it is switched on), then press Try again.';
    }
    if (name === 'NotReadableError' || name === 'TrackStartError') {
      return 'Your camera or microphone is busy or could not be started. Close other apps that may be using it ' +
        '(another video call, for example), then press Try again.';
    }
    if (name === 'OverconstrainedError' || name === 'ConstraintNotSatisfiedError') {
      return 'The selected camera or microphone is not available any more. Choose another one.';
    }
    if (name === 'AbortError') {
      return 'The browser could not start your camera or microphone. Press Try again.';
    }
    return 'Your camera and microphone could not be started' + (err && err.message ? ': ' + err.message : '.');
  }

  function normalizeIceServers(list) {
    var out = [];
    (list || []).forEach(function (s) {
      if (typeof s === 'string') out.push({ urls: s });
      else if (s && s.urls) out.push(s);
    });
    return out;
  }

  function waitForIceGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(function (resolve) {
      var done = false;
      function finish() {
        if (done) return;
        done = true;
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      }
      function check() { if (pc.iceGatheringState === 'complete') finish(); }
      pc.addEventListener('icegatheringstatechange', check);
      // Host candidates arrive within milliseconds; an unreachable STUN/TURN server must not
      // hold the join forever: send what was gathered by then.
      setTimeout(finish, timeoutMs);
    });
  }

  // ------------------------------------------------------------------ the client
  function Client(config) {
    this.config = config || {};
    this.state = 'idle';
    this.conversation = null;
    this.localStream = null;
    this.remoteStream = typeof MediaStream !== 'undefined' ? new MediaStream() : null;
    this.microphoneEnabled = true;
    this.cameraEnabled = true;
    this.endReason = '';
    this.ws = null;
    this.pc = null;
    this.dc = null;
    this._handlers = {};
    this._seen = new Set();
    this._seenOrder = [];
    this._queue = [];
    this._timers = [];
    this._joinPromise = null;
    this._previewRequest = null;
    this._deviceIds = {};
    this._wasLive = false;                // once live, a drop means "reconnecting", never "could not join"
    this._reconnectingSince = 0;
    this._reconnectTimer = null;
  }

  Client.prototype.on = function (type, fn) {
    (this._handlers[type] = this._handlers[type] || []).push(fn);
    var self = this;
    return function () { self.off(type, fn); };
  };

  Client.prototype.off = function (type, fn) {
    var list = this._handlers[type];
    if (!list) return;
    var i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  };

  Client.prototype._emit = function (type, payload) {
    var call = function (fn, args) {
      try { fn.apply(null, args); } catch (e) { console.error('OpenCVI listener failed', e); }
    };
    (this._handlers[type] || []).slice().forEach(function (fn) { call(fn, [payload]); });
    (this._handlers['*'] || []).slice().forEach(function (fn) { call(fn, [type, payload]); });
  };

  Client.prototype._setState = function (state, detail) {
    if (this.state === state && !detail) return;
    this.state = state;
    this._emit('state', { state: state, detail: detail || null });
  };

  Client.prototype._isOver = function () {
    return this.state === 'ended' || this.state === 'left' || this.state === 'error' || this.state === 'disconnected';
  };

  // ---- devices and preview
  Client.prototype.devices = function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
      return Promise.resolve({ audio: [], video: [] });
    }
    return navigator.mediaDevices.enumerateDevices().then(function (list) {
      return {
        audio: list.filter(function (d) { return d.kind === 'audioinput'; }),
        video: list.filter(function (d) { return d.kind === 'videoinput'; })
      };
    });
  };

  Client.prototype._constraints = function (kind, deviceId) {
    if (kind === 'audio') {
      var audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
      if (deviceId) audio.deviceId = { exact: deviceId };
      return audio;
    }
    var video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 30 } };
    if (deviceId) video.deviceId = { exact: deviceId };
    return video;
  };

  /**
   * Open the camera and microphone (the join screen's preview; join() reuses it).
   * A missing camera is not fatal (the face still arrives); a refused permission is.
   */
  Client.prototype.preview = function (opts) {
    opts = opts || {};
    var self = this;
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      var insecure = new Error('insecure context');
      insecure.name = 'SecurityError';
      insecure.explanation = explainMediaError(insecure);
      return Promise.reject(insecure);
    }
    var wantVideo = !this.config.audio_only && opts.video !== false;
    var ids = { audio: opts.audioDeviceId || '', video: opts.videoDeviceId || '' };
    var gum = function (c) { return navigator.mediaDevices.getUserMedia(c); };
    if (this.state === 'idle' || this.state === 'ready') this._setState('previewing');
    var request = (this._previewRequest || Promise.resolve()).catch(function () {}).then(function () {
      self._stopLocal();
      var both = { audio: self._constraints('audio', ids.audio), video: wantVideo ? self._constraints('video', ids.video) : false };
      return gum(both).catch(function (err) {
        if (!wantVideo || err.name === 'NotAllowedError' || err.name === 'SecurityError') throw err;
        // No usable camera: carry on with the microphone alone.
        return gum({ audio: both.audio, video: false });
      });
    }).then(function (stream) {
      self.localStream = stream;
      self._deviceIds = ids;
      self._applyEnabled();
      if (self.state === 'previewing') self._setState('ready');
      return stream;
    }, function (err) {
      err.explanation = explainMediaError(err);
      if (self.state === 'previewing') self._setState('idle', { error: err.explanation });
      throw err;
    });
    this._previewRequest = request;
    return request;
  };

  Client.prototype._stopLocal = function () {
    if (this.localStream) {
      this.localStream.getTracks().forEach(function (t) { t.stop(); });
      this.localStream = null;
    }
  };

  Client.prototype._applyEnabled = function () {
    var s = this.localStream;
    if (!s) return;
    var mic = this.microphoneEnabled, cam = this.cameraEnabled;
    s.getAudioTracks().forEach(function (t) { t.enabled = mic; });
    s.getVideoTracks().forEach(function (t) { t.enabled = cam; });
  };

  Client.prototype.setMicrophoneEnabled = function (on) {
    this.microphoneEnabled = !!on;
    this._applyEnabled();
    this._emit('local', { microphone: this.microphoneEnabled, camera: this.cameraEnabled });
  };

  Client.prototype.setCameraEnabled = function (on) {
    this.cameraEnabled = !!on;
    this._applyEnabled();
    this._emit('local', { microphone: this.microphoneEnabled, camera: this.cameraEnabled });
  };

  // ---- joining
  Client.prototype._wsUrl = function () {
    var c = this.config;
    var base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + c.ws_path;
    return c.token ? base + '?t=' + encodeURIComponent(c.token) : base;
  };

  /**
   * Join the conversation: camera/mic (reusing the preview when the devices match), the
   * WebSocket, then the peer connection. Resolves once the answer is applied; "live" follows
   * when the server reports system.replica_joined.
   */
  Client.prototype.join = function (opts) {
    opts = opts || {};
    if (this._joinPromise) return this._joinPromise;
    if (this.state === 'ended') return Promise.reject(new Error('this conversation has ended'));
    var self = this;
    var same = this.localStream && (!opts.audioDeviceId || opts.audioDeviceId === this._deviceIds.audio) &&
      (!opts.videoDeviceId || opts.videoDeviceId === this._deviceIds.video);
    var media = same ? Promise.resolve(this.localStream) : this.preview(opts);
    this._joinPromise = media.then(function () {
      self._setState('joining');
      return self._openSocket();
    }).then(function (conversation) {
      self.conversation = conversation;
      self._setState('connecting');
      return self._connectPeer(conversation);
    }).catch(function (err) {
      if (!self._isOver()) {
        self._setState('error', { code: err.code || err.name || 'error', message: err.explanation || err.message });
      }
      self._cleanup();
      self._joinPromise = null;
      throw err;
    });
    return this._joinPromise;
  };

  Client.prototype._openSocket = function () {
    var self = this;
    return new Promise(function (resolve, reject) {
      var ws = new WebSocket(self._wsUrl());
      var settled = false;
      self.ws = ws;
      var timer = setTimeout(function () {
        if (settled) return;
        settled = true;
        var err = new Error('The server did not answer in time. Please try again.');
        err.code = 'timeout';
        reject(err);
        try { ws.close(); } catch (e) { /* closing anyway */ }
      }, JOIN_TIMEOUT_MS);
      ws.onmessage = function (msg) {
        var data;
        try { data = JSON.parse(msg.data); } catch (e) { return; }
        if (!settled && data.type === 'joined') {
          settled = true;
          clearTimeout(timer);
          resolve(data.conversation || {});
          return;
        }
        if (!settled && data.type === 'error') {
          settled = true;
          clearTimeout(timer);
          var err = new Error(JOIN_ERROR_TEXT[data.code] || data.message || 'Could not join.');
          err.code = data.code;
          if (data.code === 'ended') self._end('');
          reject(err);
          return;
        }
        self._onSocketMessage(data);
      };
      ws.onclose = function (ev) {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          var err = new Error('Could not reach the conversation server. Check your connection and try again.');
          err.code = 'unreachable';
          reject(err);
          return;
        }
        if (self.ws === ws) self.ws = null;
        if (self._isOver()) return;
        if (self._wasLive) { self._lost('the connection to the server dropped'); return; }
        self._setState('disconnected', { code: ev.code, message: 'The connection to the conversation was lost.' });
        self._cleanup();
      };
    });
  };

  Client.prototype._connectPeer = function (conversation) {
    var self = this;
    var pc = new RTCPeerConnection({ iceServers: normalizeIceServers(conversation.ice_servers) });
    this.pc = pc;
    // The data channel must exist before the offer so that the SDP has an application section.
    var dc = pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true });
    this.dc = dc;
    dc.onopen = function () { self._flushQueue(); };
    dc.onmessage = function (msg) {
      var data;
      try { data = JSON.parse(typeof msg.data === 'string' ? msg.data : new TextDecoder().decode(msg.data)); } catch (e) { return; }
      if (data && data.type === 'ping') { self._sendDc({ type: 'pong' }); return; }
      if (data && data.type === 'pong') return;
      self._onEvent(data);
    };

    var stream = this.localStream;
    var audio = stream ? stream.getAudioTracks()[0] : null;
    var video = stream ? stream.getVideoTracks()[0] : null;
    if (audio) pc.addTrack(audio, stream); else pc.addTransceiver('audio', { direction: 'recvonly' });
    if (!conversation.audio_only) {
      if (video) pc.addTrack(video, stream); else pc.addTransceiver('video', { direction: 'recvonly' });
    } else if (video) {
      // Audio-only conversations take no camera: stop it so its light goes off.
      video.stop();
      stream.removeTrack(video);
    }

    pc.ontrack = function (ev) {
      var rs = self.remoteStream;
      if (rs) {
        // after a reconnection the new track replaces the old connection's one of its kind
        rs.getTracks().forEach(function (t) { if (t.kind === ev.track.kind && t !== ev.track) rs.removeTrack(t); });
        if (rs.getTracks().indexOf(ev.track) < 0) rs.addTrack(ev.track);
      }
      self._emit('track', { track: ev.track, stream: self.remoteStream });
    };
    var disconnectTimer = null;
    pc.onconnectionstatechange = function () {
      if (self.pc !== pc) return;  // an old connection being replaced
      var s = pc.connectionState;
      clearTimeout(disconnectTimer);
      if (s === 'connected' && self.state === 'connecting') self._setState('connected');
      if (s === 'connected' && self.state === 'reconnecting') self._recovered();
      if (s === 'disconnected' && self._wasLive && !self._isOver()) {
        // ICE may recover by itself; if it does not within a few seconds, make a new connection
        disconnectTimer = setTimeout(function () {
          if (self.pc === pc && pc.connectionState === 'disconnected') self._lost('the media connection was interrupted');
        }, DISCONNECTED_WAIT_MS);
      }
      if (s === 'failed' && !self._isOver()) {
        if (self._wasLive) { self._lost('the media connection failed'); return; }
        self._setState('error', { code: 'media_failed', message: 'The audio and video connection could not be made ' +
          '(a firewall or network may be blocking it).' });
        self._cleanup();
      }
    };

    return pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () {
      return waitForIceGathering(pc, ICE_GATHER_TIMEOUT_MS);
    }).then(function () {
      return new Promise(function (resolve, reject) {
        self._answerWaiter = { resolve: resolve, reject: reject };
        self._sendWs({ type: 'offer', sdp: pc.localDescription.sdp });
      });
    }).then(function (sdp) {
      return pc.setRemoteDescription({ type: 'answer', sdp: sdp });
    }).then(function () {
      self._startPings();
    });
  };

  Client.prototype._onSocketMessage = function (data) {
    switch (data.type) {
      case 'answer':
        if (this._answerWaiter) { this._answerWaiter.resolve(data.sdp); this._answerWaiter = null; }
        break;
      case 'event':
        this._onEvent(data.event);
        break;
      case 'ended':
        this._end(data.reason || '');
        break;
      case 'error':
        if (this._answerWaiter) {
          var err = new Error(data.message || 'The server refused the connection.');
          err.code = data.code;
          this._answerWaiter.reject(err);
          this._answerWaiter = null;
        }
        this._emit('error', { code: data.code, message: data.message });
        break;
      default:
        break;  // pong and anything newer
    }
  };

  /** A protocol event from either the data channel or the WebSocket mirror (handled once). */
  Client.prototype._onEvent = function (event) {
    if (!event || typeof event !== 'object' || !event.event_type) return;
    var key = event.seq != null ? 'seq:' + event.seq + ':' + event.event_type : JSON.stringify(event);
    if (this._seen.has(key)) return;
    this._seen.add(key);
    this._seenOrder.push(key);
    if (this._seenOrder.length > SEEN_EVENTS_MAX) this._seen.delete(this._seenOrder.shift());
    if (event.event_type === 'system.replica_joined' && !this._isOver()) { this._wasLive = true; this._setState('live'); }
    this._emit(event.event_type, event);
    this._emit('event', event);
    if (event.event_type === 'system.replica_joined') this._flushQueue();
  };

  // ---- staying in a live call through network trouble
  /** A live call lost its media or its WebSocket: try to come back until the grace period ends. */
  Client.prototype._lost = function (why) {
    if (this._isOver()) return;
    var now = Date.now();
    if (!this._reconnectingSince) this._reconnectingSince = now;
    if (now - this._reconnectingSince > RECONNECT_GRACE_MS) {
      this._setState('disconnected', { code: 'lost', message: 'The call was lost: ' + why + ' and could not be restored.' });
      this._cleanup();
      return;
    }
    if (this.state !== 'reconnecting') this._setState('reconnecting', { message: why });
    var self = this;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(function () { self._reconnect(why); }, RECONNECT_RETRY_MS);
  };

  Client.prototype._reconnect = function (why) {
    if (this._isOver()) return;
    var self = this;
    if (this.dc) { this.dc.onmessage = null; try { this.dc.close(); } catch (e) { /* gone */ } this.dc = null; }
    if (this.pc) { var old = this.pc; this.pc = null; try { old.close(); } catch (e) { /* gone */ } }
    this._timers.forEach(clearInterval);
    this._timers = [];
    var socket = this.ws && this.ws.readyState === WebSocket.OPEN ? Promise.resolve(this.conversation) : this._openSocket();
    socket.then(function (conversation) {
      self.conversation = conversation || self.conversation;
      return self._connectPeer(self.conversation);
    }).catch(function (err) {
      if (err && err.code === 'ended') return;  // the conversation ended meanwhile: shown as ended
      if (err && (err.code === 'not_found' || err.code === 'unauthorized' || err.code === 'full' ||
                  err.code === 'server_at_capacity')) {
        self._setState('disconnected', { code: err.code, message: 'The call was lost and could not be rejoined: ' + err.message });
        self._cleanup();
        return;
      }
      self._lost(why);
    });
  };

  Client.prototype._recovered = function () {
    this._reconnectingSince = 0;
    clearTimeout(this._reconnectTimer);
    this._setState('live');
    this._flushQueue();
  };

  Client.prototype._end = function (reason) {
    if (this.state === 'ended') return;
    this.endReason = reason;
    this._setState('ended', { reason: reason, message: SHUTDOWN_TEXT[reason] || '' });
    this._cleanup();
  };

  Client.prototype._startPings = function () {
    var self = this;
    this._timers.push(setInterval(function () {
      self._sendDc({ type: 'ping' });
      self._sendWs({ type: 'ping' });
    }, PING_INTERVAL_MS));
  };

  Client.prototype._sendWs = function (payload) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(payload));
    return true;
  };

  Client.prototype._sendDc = function (payload) {
    if (!this.dc || this.dc.readyState !== 'open') return false;
    var text = JSON.stringify(payload);
    if (text.length > DATA_CHANNEL_MAX) return false;
    try { this.dc.send(text); return true; } catch (e) { return false; }
  };

  // ---- protocol commands
  /**
   * Send an interactions-protocol message. Before the face is live the message waits (the
   * server's pipeline starts when the media connects); after leaving it is dropped.
   */
  Client.prototype.send = function (eventType, properties) {
    var message = {
      message_type: 'conversation',
      event_type: eventType,
      conversation_id: this.config.conversation_id,
      properties: properties || {}
    };
    if (this._isOver()) return Promise.reject(new Error('not in the conversation (' + this.state + ')'));
    if (this.state !== 'live') {
      var self = this;
      return new Promise(function (resolve, reject) { self._queue.push({ message: message, resolve: resolve, reject: reject }); });
    }
    this._sendMessage(message);
    return Promise.resolve();
  };

  Client.prototype._sendMessage = function (message) {
    if (!this._sendDc(message)) this._sendWs({ type: 'message', message: message });
  };

  Client.prototype._flushQueue = function () {
    if (this.state !== 'live') return;
    var queue = this._queue;
    this._queue = [];
    var self = this;
    queue.forEach(function (item) { self._sendMessage(item.message); item.resolve(); });
  };

  Client.prototype.respond = function (text) { return this.send('conversation.respond', { text: String(text) }); };
  Client.prototype.interrupt = function () { return this.send('conversation.interrupt', {}); };
  Client.prototype.echo = function (text, opts) {
    opts = opts || {};
    var props = { modality: 'text', text: String(text), done: opts.done !== undefined ? !!opts.done : true };
    if (opts.inferenceId) props.inference_id = opts.inferenceId;
    return this.send('conversation.echo', props);
  };
  Client.prototype.overwriteContext = function (text) { return this.send('conversation.overwrite_llm_context', { context: String(text) }); };
  Client.prototype.appendContext = function (text) { return this.send('conversation.append_llm_context', { context: String(text) }); };
  Client.prototype.sensitivity = function (opts) {
    opts = opts || {};
    var props = {};
    if (opts.pause) props.participant_pause_sensitivity = opts.pause;
    if (opts.interrupt) props.participant_interrupt_sensitivity = opts.interrupt;
    return this.send('conversation.sensitivity', props);
  };
  Client.prototype.toolResult = function (id, output, status) {
    var props = { tool_call_id: String(id), output: typeof output === 'string' ? output : JSON.stringify(output) };
    if (status) props.status = status;
    return this.send('conversation.tool_result', props);
  };

  // ---- leaving
  Client.prototype.leave = function () {
    if (this.state === 'ended' || this.state === 'left') return;
    this._sendWs({ type: 'leave' });
    this._setState('left');
    this._cleanup();
  };

  Client.prototype._cleanup = function () {
    clearTimeout(this._reconnectTimer);
    this._timers.forEach(clearInterval);
    this._timers = [];
    var queue = this._queue;
    this._queue = [];
    queue.forEach(function (item) { item.reject(new Error('the conversation is over')); });
    if (this._answerWaiter) { this._answerWaiter.reject(new Error('the conversation is over')); this._answerWaiter = null; }
    if (this.dc) { try { this.dc.close(); } catch (e) { /* already closed */ } this.dc = null; }
    if (this.pc) { try { this.pc.close(); } catch (e) { /* already closed */ } this.pc = null; }
    if (this.ws) {
      var ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      try { ws.close(1000); } catch (e) { /* already closed */ }
    }
    this._stopLocal();
  };

  // ------------------------------------------------------------------ iframe bridge
  /**
   * When the page runs inside an iframe, the embedding page drives it by postMessage. Only
   * messages from the parent window whose origin is allowed (the page's own origin or the
   * account's allowed embedding origins, which frame-ancestors also enforces) are obeyed, and
   * events are only ever posted to such an origin.
   */
  function setupEmbedBridge(client, config) {
    if (!inIframe() || !window.parent) return null;
    var allowed = [location.origin].concat(config.allowed_origins || []);
    var parentOrigin = null;
    var ancestors = location.ancestorOrigins;
    if (ancestors && ancestors.length && originAllowed(ancestors[0], allowed)) parentOrigin = ancestors[0];

    function post(message) {
      if (parentOrigin) { window.parent.postMessage(message, parentOrigin); return; }
      // Unknown parent origin (no ancestorOrigins): try every exact allowed origin; the browser
      // only delivers to the one that matches.
      allowed.forEach(function (o) { if (o.indexOf('*') < 0) window.parent.postMessage(message, o); });
    }

    var commands = {
      join: function (d) { return client.join({ audioDeviceId: d.audioDeviceId, videoDeviceId: d.videoDeviceId }); },
      leave: function () { client.leave(); },
      respond: function (d) { return client.respond(d.text); },
      interrupt: function () { return client.interrupt(); },
      echo: function (d) { return client.echo(d.text, { inferenceId: d.inference_id || d.inferenceId, done: d.done }); },
      overwriteContext: function (d) { return client.overwriteContext(d.text != null ? d.text : d.context); },
      appendContext: function (d) { return client.appendContext(d.text != null ? d.text : d.context); },
      sensitivity: function (d) { return client.sensitivity({ pause: d.pause, interrupt: d.interrupt }); },
      toolResult: function (d) { return client.toolResult(d.id != null ? d.id : d.tool_call_id, d.output, d.status); },
      setMicrophoneEnabled: function (d) { client.setMicrophoneEnabled(d.enabled); },
      setCameraEnabled: function (d) { client.setCameraEnabled(d.enabled); },
      hello: function () { post({ opencvi: 'ready', state: client.state }); }
    };
    commands.overwrite_context = commands.overwriteContext;
    commands.append_context = commands.appendContext;
    commands.tool_result = commands.toolResult;

    window.addEventListener('message', function (ev) {
      if (ev.source !== window.parent) return;
      var d = ev.data;
      if (!d || typeof d !== 'object' || typeof d.opencvi !== 'string') return;
      if (!originAllowed(ev.origin, allowed)) {
        console.warn('OpenCVI: ignoring a command from ' + ev.origin + ' (not an allowed embedding origin)');
        return;
      }
      parentOrigin = ev.origin;
      var fn = Object.prototype.hasOwnProperty.call(commands, d.opencvi) ? commands[d.opencvi] : null;
      var reply = function (ok, error) {
        if (d.id != null) post({ opencvi: 'result', id: d.id, command: d.opencvi, ok: ok, error: error || null });
      };
      if (!fn) { reply(false, 'unknown command ' + d.opencvi); return; }
      var result;
      try { result = fn(d); } catch (e) { reply(false, e.message); return; }
      Promise.resolve(result).then(function () { reply(true); }, function (e) { reply(false, (e && (e.explanation || e.message)) || String(e)); });
    });

    client.on('event', function (event) { post({ opencvi: 'event', event: event }); });
    client.on('state', function (s) { post({ opencvi: 'state', state: s.state, detail: s.detail }); });
    post({ opencvi: 'ready', state: client.state });
    return { post: post };
  }

  // ------------------------------------------------------------------ boot
  var config = readConfig() || {};
  var client = new Client(config);
  var api = {
    version: '1',
    client: client,
    config: config,
    get state() { return client.state; },
    get conversation() { return client.conversation; },
    get localStream() { return client.localStream; },
    get remoteStream() { return client.remoteStream; },
    get microphoneEnabled() { return client.microphoneEnabled; },
    get cameraEnabled() { return client.cameraEnabled; },
    join: function (opts) { return client.join(opts); },
    leave: function () { return client.leave(); },
    preview: function (opts) { return client.preview(opts); },
    devices: function () { return client.devices(); },
    respond: function (text) { return client.respond(text); },
    interrupt: function () { return client.interrupt(); },
    echo: function (text, opts) { return client.echo(text, opts); },
    overwriteContext: function (text) { return client.overwriteContext(text); },
    appendContext: function (text) { return client.appendContext(text); },
    sensitivity: function (opts) { return client.sensitivity(opts); },
    toolResult: function (id, output, status) { return client.toolResult(id, output, status); },
    send: function (eventType, properties) { return client.send(eventType, properties); },
    setMicrophoneEnabled: function (on) { return client.setMicrophoneEnabled(on); },
    setCameraEnabled: function (on) { return client.setCameraEnabled(on); },
    on: function (type, fn) { return client.on(type, fn); },
    off: function (type, fn) { return client.off(type, fn); },
    explainMediaError: explainMediaError,
    originAllowed: originAllowed
  };
  window.OpenCVI = api;

  // Inside an iframe, the embedding page drives the conversation by postMessage. The page's UI
  // (static/js/opencvi-page.js, loaded after this file) mounts on the same DOMContentLoaded,
  // after the bridge, so the bridge sees every state from the first.
  if (config.conversation_id) {
    var start = function () { setupEmbedBridge(client, config); };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
  }
})(window, document);
