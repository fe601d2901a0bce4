/*!
 * OpenCVI embed helper: put a conversation page in an iframe on your site and drive it.
 *
 *   <script src="https://YOUR-OPENCVI/static/js/opencvi-embed.js"></script>
 *   var call = OpenCVIEmbed.mount(document.getElementById('cvi'), conversationUrl);
 *   call.on('conversation.utterance', function (ev) { console.log(ev.properties.role, ev.properties.speech); });
 *   call.join();                 // or let the person press Join inside the frame
 *   call.respond('Hello!');      // every command returns a Promise
 *
 * Your origin must be in the account's allowed embedding origins (frame-ancestors), or the
 * browser refuses to show the frame. See docs/EMBEDDING.md.
 */
(function (window, document) {
  'use strict';

  var COMMANDS = ['join', 'leave', 'respond', 'interrupt', 'echo', 'overwriteContext', 'appendContext',
    'sensitivity', 'toolResult', 'setMicrophoneEnabled', 'setCameraEnabled'];

  function mount(element, conversationUrl, options) {
    options = options || {};
    if (typeof element === 'string') element = document.querySelector(element);
    if (!element) throw new Error('OpenCVIEmbed.mount: no element to mount into');
    var url = new URL(conversationUrl, location.href);
    var origin = url.origin;

    var iframe = document.createElement('iframe');
    // camera + microphone: the person's media; autoplay: the face's voice without an extra tap.
    iframe.allow = 'camera; microphone; autoplay; display-capture; fullscreen';
    iframe.title = options.title || 'Conversation';
    iframe.style.border = '0';
    iframe.style.width = options.width || '100%';
    iframe.style.height = options.height || '100%';
    iframe.style.display = 'block';

    var handlers = {};
    var pending = {};
    var queue = [];
    var nextId = 1;
    var isReady = false;
    var readyResolve;
    var call = {
      iframe: iframe,
      origin: origin,
      state: 'loading',
      ready: new Promise(function (r) { readyResolve = r; }),
      on: function (type, fn) {
        (handlers[type] = handlers[type] || []).push(fn);
        return function () { call.off(type, fn); };
      },
      off: function (type, fn) {
        var list = handlers[type] || [];
        var i = list.indexOf(fn);
        if (i >= 0) list.splice(i, 1);
      },
      /** Send any command the frame understands: {opencvi: name, ...fields}. */
      command: function (name, fields) {
        var id = 'c' + (nextId++);
        var msg = Object.assign({}, fields || {}, { opencvi: name, id: id });
        return new Promise(function (resolve, reject) {
          pending[id] = { resolve: resolve, reject: reject };
          if (isReady) post(msg); else queue.push(msg);
        });
      },
      destroy: function () {
        window.removeEventListener('message', onMessage);
        Object.keys(pending).forEach(function (id) { pending[id].reject(new Error('destroyed')); });
        pending = {};
        if (iframe.parentNode) iframe.parentNode.removeChild(iframe);
      }
    };

    function post(msg) { iframe.contentWindow.postMessage(msg, origin); }

    function emit(type, payload) {
      (handlers[type] || []).slice().forEach(function (fn) { fn(payload); });
      (handlers['*'] || []).slice().forEach(function (fn) { fn(type, payload); });
    }

    function onMessage(ev) {
      // Only the frame we made, from the origin we loaded, is listened to.
      if (ev.source !== iframe.contentWindow || ev.origin !== origin) return;
      var d = ev.data;
      if (!d || typeof d !== 'object' || typeof d.opencvi !== 'string') return;
      if (d.opencvi === 'ready') {
        call.state = d.state || call.state;
        if (!isReady) {
          isReady = true;
          var q = queue;
          queue = [];
          q.forEach(post);
          readyResolve(call);
          emit('ready', { state: call.state });
        }
      } else if (d.opencvi === 'event' && d.event) {
        emit(d.event.event_type, d.event);
        emit('event', d.event);
      } else if (d.opencvi === 'state') {
        call.state = d.state;
        emit('state', { state: d.state, detail: d.detail });
      } else if (d.opencvi === 'result' && pending[d.id]) {
        var p = pending[d.id];
        delete pending[d.id];
        if (d.ok) p.resolve(); else p.reject(new Error(d.error || d.command + ' failed'));
      }
    }
    window.addEventListener('message', onMessage);

    call.join = function (opts) { return call.command('join', opts || {}); };
    call.leave = function () { return call.command('leave'); };
    call.respond = function (text) { return call.command('respond', { text: text }); };
    call.interrupt = function () { return call.command('interrupt'); };
    call.echo = function (text, opts) { return call.command('echo', Object.assign({ text: text }, opts || {})); };
    call.overwriteContext = function (text) { return call.command('overwriteContext', { text: text }); };
    call.appendContext = function (text) { return call.command('appendContext', { text: text }); };
    call.sensitivity = function (opts) { return call.command('sensitivity', opts || {}); };
    call.toolResult = function (id, output, status) { return call.command('toolResult', { id: id, output: output, status: status }); };
    call.setMicrophoneEnabled = function (on) { return call.command('setMicrophoneEnabled', { enabled: !!on }); };
    call.setCameraEnabled = function (on) { return call.command('setCameraEnabled', { enabled: !!on }); };

    // A frame refused by frame-ancestors (origin not allowed) or a page that is not a live
    // conversation never says "ready": report it once the frame has loaded.
    iframe.addEventListener('load', function () {
      setTimeout(function () {
        if (!isReady) emit('unavailable', { reason: 'the conversation page did not start in the frame ' +
          '(is this origin in the allowed embedding origins, and is the conversation still active?)' });
      }, options.readyTimeoutMs || 5000);
    });
    iframe.src = url.href;
    element.appendChild(iframe);
    return call;
  }

  window.OpenCVIEmbed = { mount: mount, commands: COMMANDS.slice() };
})(window, document);
