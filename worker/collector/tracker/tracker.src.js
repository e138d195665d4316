/*
 * cio-relay browser tracker: the readable source of worker/collector/static/tracker.js
 * (rebuild with `make tracker`; the minified file is committed, so nothing else needs Node).
 *
 * Installed by one tag, no init call:
 *   <script async src="https://collector.example/tracker.js?writeKey=K" data-write-key="K">
 * The write key comes from data-write-key or ?writeKey= of the script's own src, and the
 * collector's origin from that src. Options on the tag: data-auto-page="false" turns off the
 * page view sent on load (it is also skipped when the page queued its own page view).
 *
 * Globals:
 *   cio.page(name?, props?)  cio.track(name, props)  cio.identify(idOrTraits, traits?)
 *   cio.on(name | "*", fn)   cio.flush() -> Promise<boolean: nothing left to send>
 *   cio.anonymousId()  cio.userId()  cio.reset()
 *   cio.ready: a Promise of whether /v1/config arrived (false once CONFIG_WAIT_MS passed)
 *   _cl.pageview / track / trackClick / trackSubmit / identify / trackConsent: the CustomerLabs
 *   snippet API, producing CustomerLabs envelopes (../../../../shared/customerlabs-events.md).
 * Before load, window.cio and window._cl may be arrays of [method, ...args] queued by the
 * page; they are replayed in order (_cl first, then cio).
 *
 * Consent (README "Consent"; the relay reads it in worker/normalize/consent.py): each
 * _cl.trackConsent(props) merges the categories it states (true/false or text such as
 * "granted"/"denied", {t, v}-wrapped or not) into a state kept in localStorage (cio_consent),
 * and still sends its "Consent updated" event unchanged. Every event built after that carries
 * the state: CustomerLabs ones as properties.customProperties.consent = {"t": "object", "v":
 * {category: {"t": "string", "v": "granted" | "denied"}}} unless they have their own consent,
 * cio.* ones as context.consent.categoryPreferences = {category: true | false}.
 *
 * Pipeline of every event: built at call time -> waits for /v1/config (at most CONFIG_WAIT_MS,
 * after which the relay alone decides) -> trigger paths of the event's workflow entry ->
 * callbacks registered with cio.on -> size check -> outbox (memory + localStorage) -> POST
 * /v1/batch as text/plain (no preflight) -> removed on 2xx, dropped with a warning on other 4xx,
 * kept and retried with backoff on network errors, 429 and 5xx.
 *
 * Trigger paths follow the relay (worker/workflow/rules.py): glob is Python fnmatch (here
 * translated to a RegExp: * and ? match any character including "/", [seq], [!seq]), regex is
 * JavaScript RegExp search where the relay uses Python re.search. The syntaxes differ at the
 * edges: Python-only constructs such as (?P<name>...), \A, \Z or inline flags like (?i) do not
 * compile here, and lookbehind needs a recent browser (and JS accepts variable-width lookbehind
 * that Python refuses). When any pattern of an event fails to compile in the browser, that
 * event's trigger paths are not applied here at all: it is sent and the relay decides.
 */
(function (w, d) {
  'use strict';
  if (w.cio && w.cio.VERSION) return; // loaded twice: keep the first copy

  var VERSION = '1.1.0';
  var FLUSH_MS = 1000;
  var BATCH_EVENTS = 20;
  var EVENT_BYTES = 32000; // collector limit 32 KB per event, with a margin
  var BATCH_BYTES = 480000; // collector limit 500 KB per request, with a margin
  var BEACON_BYTES = 60000; // browsers allow about 64 KB of beacons in flight
  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_CAP_MS = 30000;
  var CONFIG_WAIT_MS = 2000;
  var STORED_MAX = 1000;
  var ANON = 'cio_anon';
  var USER = 'cio_user_id';
  var CONSENT = 'cio_consent';
  var YEAR_S = 31536000;

  var con = w.console;
  // Local names for globals used often: the minifier shortens these, never the globals.
  var loc = location;
  var nav = navigator;
  var json = JSON.stringify;
  var assign = Object.assign;
  var isArray = Array.isArray;
  var script = findScript();
  var src = script ? new URL(script.src, loc.href) : null;
  var writeKey = script ? script.getAttribute('data-write-key') || src.searchParams.get('writeKey') : null;
  var origin = src ? src.origin : '';
  var batchUrl = origin + '/v1/batch';
  var queueKey = 'cio_queue:' + writeKey;
  if (!writeKey) con.warn('cio: no write key');

  var config = null; // the /v1/config answer, once it arrives
  var ready = false; // true once config arrived or CONFIG_WAIT_MS passed
  var waiting = []; // events built before ready
  var handlers = []; // [name, fn] from cio.on
  var outbox = []; // events ready to send, oldest first
  var timer = 0;
  var attempt = 0; // consecutive failed sends
  var inflight = null;
  var beaconed = {}; // ids already sent by beacon from this page
  var anonId = loadAnonId();
  var userId = get(USER);
  var consent = loadConsent(); // category -> true (granted) / false (denied), from trackConsent

  // ---- storage -----------------------------------------------------------------------------

  function get(key) {
    try {
      return localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function put(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (e) {
      /* storage full or disabled: memory still holds everything */
    }
  }

  function anonCookie() {
    var m = d.cookie.match(new RegExp('(?:^|; )' + ANON + '=([^;]*)'));
    return m && decodeURIComponent(m[1]);
  }

  function saveAnonId(id) {
    d.cookie = ANON + '=' + encodeURIComponent(id) + '; path=/; max-age=' + YEAR_S +
      '; SameSite=Lax' + (loc.protocol === 'https:' ? '; Secure' : '');
    put(ANON, id);
  }

  /** The visitor's anonymous id: cookie first, then localStorage, else a new one; kept in both. */
  function loadAnonId() {
    var id = anonCookie() || get(ANON) || uuid();
    saveAnonId(id);
    return id;
  }

  function loadConsent() {
    try {
      var c = JSON.parse(get(CONSENT));
      return isObject(c) ? c : {};
    } catch (e) {
      return {};
    }
  }

  function stored() {
    try {
      var list = JSON.parse(get(queueKey) || '[]');
      return isArray(list) ? list : [];
    } catch (e) {
      return [];
    }
  }

  /** Add and remove events in the stored queue (read-modify-write: other tabs share it). */
  function store(add, remove) {
    var ids = {};
    remove.forEach(function (ev) { ids[idOf(ev)] = 1; });
    var list = stored().filter(function (ev) { return !ids[idOf(ev)]; }).concat(add);
    put(queueKey, list.length ? json(list.slice(-STORED_MAX)) : null);
  }

  // ---- helpers -----------------------------------------------------------------------------

  function findScript() {
    var s = d.currentScript;
    if (s && s.src) return s;
    // The last tracker tag on the page.
    return Array.from(d.scripts).reverse().find(function (t) {
      return /\/tracker\.js(?:[?#]|$)/.test(t.src);
    });
  }

  function uuid() {
    var c = w.crypto;
    if (c.randomUUID) return c.randomUUID();
    // randomUUID needs a secure context (https); getRandomValues works on plain http too.
    var b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.from(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
  }

  function now() {
    return new Date().toISOString();
  }

  function bytes(text) {
    return new Blob([text]).size;
  }

  function idOf(ev) {
    return ev.messageId || ev.message_id;
  }

  function isObject(x) {
    return !!x && typeof x === 'object' && !isArray(x);
  }

  function pageViewName() {
    return (config && config.pageViewEvent) || 'Page viewed';
  }

  /** The workflow name of an event, as the relay resolves it (customerlabs-events.md). */
  function nameOf(ev) {
    var t = ev.method || ev.type;
    if (ev.method && ev.event_name) return ev.event_name;
    if (/^track/.test(t)) return ev.event || ''; // track, trackClick, trackSubmit
    if (/^page/.test(t)) return pageViewName(); // page, pageview
    if (t === 'identify') return 'Create user';
    return t === 'group' ? 'Create group' : ''; // no screen calls in a browser
  }

  function urlOf(ev) {
    var c = ev.context || {};
    return c.page_url || (c.page && c.page.url) || loc.href;
  }

  // ---- building events ---------------------------------------------------------------------

  function segment(type, fields) {
    var ev = {
      type: type,
      messageId: uuid(),
      timestamp: now(),
      anonymousId: anonId,
      context: {
        page: pageInfo(),
        userAgent: nav.userAgent,
        library: { name: 'cio-relay-tracker', version: VERSION }
      }
    };
    if (userId) ev.userId = userId;
    if (hasConsent()) ev.context.consent = { categoryPreferences: assign({}, consent) };
    return assign(ev, fields);
  }

  function pageInfo() {
    return {
      url: loc.href,
      path: loc.pathname,
      search: loc.search,
      title: d.title,
      referrer: d.referrer
    };
  }

  /** CustomerLabs properties: {customProperties, productProperties} as given, else bare props. */
  function clProperties(props) {
    if (!isObject(props)) return { customProperties: {} };
    if ('customProperties' in props || 'productProperties' in props) return props;
    return { customProperties: props };
  }

  /** A CustomerLabs envelope; unless ``bare``, it carries the consent state in
   * customProperties.consent (when the page gave none of its own), copying what it changes. */
  function customerlabs(method, name, props, bare) {
    var p = clProperties(props);
    var c = p.customProperties;
    var wrapped = isWrapper(c);
    var inner = unwrap(c);
    if (!bare && hasConsent() && !p.consent && (inner == null || (isObject(inner) && !inner.consent))) {
      var states = {};
      for (var k in consent) states[k] = { t: 'string', v: consent[k] ? 'granted' : 'denied' };
      inner = assign({}, inner, { consent: { t: 'object', v: states } });
      p = assign({}, p, { customProperties: wrapped ? assign({}, c, { v: inner }) : inner });
    }
    var ev = {
      method: method,
      message_id: uuid(),
      timestamp: now(),
      customerlabs_user_id: anonId,
      context: { page_url: loc.href, referrer: d.referrer, user_agent: nav.userAgent },
      properties: p
    };
    if (name) ev.event_name = String(name);
    return ev;
  }

  // ---- consent (worker/normalize/consent.py) -------------------------------------------------

  function hasConsent() {
    return Object.keys(consent).length;
  }

  function isWrapper(x) {
    return isObject(x) && typeof x.t === 'string' && 'v' in x;
  }

  function unwrap(x) {
    return isWrapper(x) ? x.v : x;
  }

  /** One category's state as the relay reads it: a boolean, or text such as "granted" or
   * "denied" (either possibly {t, v}-wrapped); undefined for anything else. */
  function consentState(x) {
    x = unwrap(x);
    if (typeof x === 'boolean') return x;
    if (typeof x !== 'string') return;
    x = x.trim().toLowerCase();
    if (/^(granted|true|yes|1|allow(ed)?)$/.test(x)) return true;
    if (/^(denied|false|no|0|deny)$/.test(x)) return false;
  }

  /** Merge the categories a trackConsent call states into the consent state and store it:
   * its own ``consent`` object if it has one, else its properties (as the relay reads them). */
  function updateConsent(props) {
    var p = clProperties(props);
    var all = assign({}, p, unwrap(p.customProperties));
    var own = unwrap(all.consent);
    var given = isObject(own) ? own : all;
    for (var k in given) {
      var s = consentState(given[k]);
      if (s != null) consent[k] = s;
    }
    put(CONSENT, json(consent));
  }

  // ---- the pipeline ------------------------------------------------------------------------

  function emit(ev) {
    if (ready) accept(ev);
    else waiting.push(ev);
  }

  function release() {
    if (ready) return;
    ready = true;
    waiting.splice(0).forEach(accept);
  }

  /** Trigger paths, callbacks and the size limit; what survives goes to the outbox. */
  function accept(ev) {
    var name = nameOf(ev);
    if (!allowedByPaths(name, urlOf(ev))) return;
    ev = runCallbacks(name, ev);
    if (!ev) return;
    var size;
    try {
      size = bytes(json(ev));
    } catch (err) {
      size = Infinity; // not JSON (a cycle): it could never be sent
    }
    if (size > EVENT_BYTES) {
      con.warn('cio: dropped "' + name + '": over 32 KB or not JSON');
      return;
    }
    outbox.push(ev);
    store([ev], []);
    if (outbox.length >= BATCH_EVENTS && !attempt) pump();
    else schedule(FLUSH_MS);
  }

  function runCallbacks(name, ev) {
    for (var i = 0; i < handlers.length; i++) {
      var h = handlers[i];
      if (h[0] !== '*' && h[0] !== name) continue;
      var out;
      try {
        out = h[1](ev);
      } catch (err) {
        con.error('cio: callback of "' + name + '" failed', err);
        continue;
      }
      if (out === null || out === false) return null;
      if (isObject(out)) ev = out;
    }
    return ev;
  }

  // ---- trigger paths (worker/workflow/rules.py) ---------------------------------------------

  /** Python fnmatch.translate as a RegExp: *, ?, [seq], [!seq]; anchored at both ends. */
  function globRegExp(p) {
    var out = '';
    var i = 0;
    while (i < p.length) {
      var c = p[i++];
      if (c === '*') out += '[\\s\\S]*';
      else if (c === '?') out += '[\\s\\S]';
      else if (c === '[') {
        var j = i;
        if (p[j] === '!') j++;
        if (p[j] === ']') j++;
        while (j < p.length && p[j] !== ']') j++;
        if (j >= p.length) {
          out += '\\[';
        } else {
          // A "]" first in the set is literal in Python; JavaScript needs it escaped.
          var set = p.slice(i, j).replace(/\\/g, '\\\\').replace(/]/g, '\\]');
          i = j + 1;
          if (set[0] === '!') set = '^' + set.slice(1);
          else if (set[0] === '^') set = '\\' + set;
          out += '[' + set + ']';
        }
      } else out += c.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&');
    }
    return new RegExp('^(?:' + out + ')$');
  }

  function matcher(rule) {
    var p = String(rule.pattern);
    var m = rule.match;
    var re = m === 'glob' ? globRegExp(p) : m === 'regex' ? new RegExp(p) : null;
    return function (subject) {
      if (m === 'exact') return subject === p;
      if (m === 'prefix') return subject.startsWith(p);
      if (m === 'contains') return subject.includes(p);
      return re ? re.test(subject) : false;
    };
  }

  /** The relay's decision on trigger paths: dont_fire wins; fire rules, if any, must match. */
  function allowedByPaths(name, url) {
    var rule = config && config.events && config.events[name];
    var paths = (rule && rule.trigger_paths) || [];
    if (!paths.length) return true;
    var path;
    try {
      path = new URL(url, loc.href).pathname;
    } catch (e) {
      path = url.split(/[?#]/)[0];
    }
    var fire = 0; // any fire rule
    var fired = 0; // any fire rule matched
    var blocked = 0; // any dont_fire rule matched
    try {
      paths.forEach(function (r) {
        var hit = matcher(r)(String(r.pattern)[0] === '/' ? path : url);
        if (r.action === 'dont_fire') blocked |= hit;
        else {
          fire = 1;
          fired |= hit;
        }
      });
    } catch (err) {
      con.warn('cio: trigger path of "' + name + '" left to the relay', err);
      return true;
    }
    return !blocked && (!fire || !!fired);
  }

  // ---- transport ---------------------------------------------------------------------------

  function schedule(ms) {
    if (!timer) timer = setTimeout(pump, ms);
  }

  function body(batch) {
    return json({ batch: batch, writeKey: writeKey, sentAt: now() });
  }

  /** The first events of ``list`` that fit one request (count and byte limits). */
  function take(list, maxBytes) {
    var batch = [];
    var size = 100;
    for (var i = 0; i < list.length && batch.length < BATCH_EVENTS; i++) {
      var n = bytes(json(list[i])) + 1;
      if (batch.length && size + n > maxBytes) break;
      size += n;
      batch.push(list[i]);
    }
    return batch;
  }

  function forget(batch) {
    outbox = outbox.filter(function (ev) { return batch.indexOf(ev) < 0; });
    store([], batch);
  }

  /** POST one batch body as text/plain (a simple request: no CORS preflight). */
  function send(text, keepalive) {
    return fetch(batchUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: text,
      keepalive: keepalive,
      credentials: 'omit'
    });
  }

  /** One POST of the oldest events; resolves to 0 when done with them, else a retry delay. */
  function post() {
    var batch = take(outbox, BATCH_BYTES);
    return send(body(batch)).then(function (res) {
      if (res.ok) {
        forget(batch);
        return 0;
      }
      if (res.status === 429 || res.status >= 500) {
        return parseFloat(res.headers.get('Retry-After')) * 1000 || 1;
      }
      // Refused for good. The collector names a bad item's index ("event 3: ..."): drop only
      // that one and send the rest again; otherwise the whole batch goes.
      return res.text().then(function (why) {
        var m = /"message":"event (\d+)/.exec(why);
        var bad = (m && batch.slice(+m[1], +m[1] + 1)) || [];
        if (!bad.length) bad = batch;
        con.warn('cio: ' + res.status + ', dropped ' + bad.length + ' events: ' + why);
        forget(bad);
        return 0;
      });
    }, function () {
      return 1;
    });
  }

  function sendOnce() {
    if (!inflight) {
      inflight = post().then(function (retry) {
        inflight = null;
        attempt = retry ? attempt + 1 : 0;
        return retry;
      });
    }
    return inflight;
  }

  /** Send until the outbox is empty or a send fails; on failure, back off and try again. */
  function pump() {
    clearTimeout(timer);
    timer = 0;
    if (!writeKey || !outbox.length) return Promise.resolve(!outbox.length);
    return sendOnce().then(function (retry) {
      if (!retry) return pump();
      var base = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
      schedule(Math.max(retry, base / 2 + (Math.random() * base) / 2));
      return false;
    });
  }

  /*
   * On page hide, whatever is queued goes out with sendBeacon. A beacon's response is
   * invisible, so the events stay in the outbox and localStorage until a later fetch succeeds;
   * that fetch may deliver them a second time. That is the accepted trade-off: every event
   * carries a random messageId / message_id and the relay de-duplicates by it, so a duplicate
   * is harmless while a loss would not be.
   */
  function onHide() {
    release();
    if (!writeKey) return;
    // pagehide and visibilitychange both fire on leaving: beacon each event once per page.
    var rest = outbox.filter(function (ev) { return !beaconed[idOf(ev)]; });
    while (rest.length) {
      var batch = take(rest, BEACON_BYTES);
      rest = rest.slice(batch.length);
      batch.forEach(function (ev) { beaconed[idOf(ev)] = 1; });
      var text = body(batch);
      var sent = false;
      try {
        sent = nav.sendBeacon(batchUrl, new Blob([text], { type: 'text/plain' }));
      } catch (e) {
        /* fall back below */
      }
      if (!sent) {
        send(text, true).catch(function () {});
      }
    }
  }

  // ---- no-code events ----------------------------------------------------------------------

  function absolute(url) {
    try {
      return new URL(url, loc.href).href;
    } catch (e) {
      return url;
    }
  }

  function text(el) {
    return (el.innerText || el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 100);
  }

  /** Delegated click/submit listener: a matching element fires its workflow event. */
  function noCode(e) {
    var events = (config && config.events) || {};
    var target = e.target && e.target.closest ? e.target : null;
    if (!target) return;
    Object.keys(events).forEach(function (name) {
      (events[name].client || []).forEach(function (def) {
        if (def.on !== e.type) return;
        var el;
        try {
          el = target.closest(def.selector);
        } catch (err) {
          return; // a selector this browser cannot parse
        }
        if (!el) return;
        var props = { selector: def.selector, text: text(el) };
        var href = el.getAttribute('href');
        var action = el.tagName === 'FORM' && el.getAttribute('action');
        if (href) props.href = absolute(href);
        if (action) props.action = absolute(action);
        emit(segment('track', { event: name, properties: props }));
      });
    });
  }

  // ---- public API --------------------------------------------------------------------------

  var cio = {
    VERSION: VERSION,
    page: function (name, props) {
      if (isObject(name)) {
        props = name;
        name = null;
      }
      var properties = pageInfo();
      var fields = { properties: properties };
      if (name) fields.name = properties.name = String(name);
      assign(properties, props);
      emit(segment('page', fields));
    },
    track: function (name, props) {
      if (!name) return con.warn('cio: track needs a name');
      emit(segment('track', { event: String(name), properties: isObject(props) ? props : {} }));
    },
    identify: function (idOrTraits, traits) {
      if (isObject(idOrTraits)) {
        traits = idOrTraits;
      } else if (idOrTraits != null && idOrTraits !== '') {
        userId = String(idOrTraits);
        put(USER, userId);
      }
      emit(segment('identify', { traits: isObject(traits) ? traits : {} }));
    },
    on: function (name, fn) {
      if (typeof fn === 'function') handlers.push([String(name), fn]);
    },
    flush: function () {
      return ready ? pump() : waitForReady.then(pump);
    },
    anonymousId: function () {
      return anonId;
    },
    userId: function () {
      return userId;
    },
    reset: function () {
      userId = null;
      put(USER, null);
      anonId = uuid();
      saveAnonId(anonId);
    }
  };

  var cl = {
    pageview: function (name, props) {
      if (isObject(name)) {
        props = name;
        name = null;
      }
      emit(customerlabs('pageview', name, props));
    },
    identify: function (props) {
      emit(customerlabs('identify', null, props));
    },
    trackConsent: function (props) {
      // The event itself states consent in its own properties, as today; later ones carry it.
      emit(customerlabs('track', 'Consent updated', props, true));
      updateConsent(props);
    }
  };

  ['track', 'trackClick', 'trackSubmit', 'group'].forEach(function (method) {
    cl[method] = function (name, props) {
      emit(customerlabs(method, name, props));
    };
  });

  function replay(queue, api) {
    if (!isArray(queue)) return false;
    var paged = false;
    queue.forEach(function (call) {
      if (!isArray(call) || typeof api[call[0]] !== 'function') return;
      if (/^page/.test(call[0])) paged = true; // page or pageview
      api[call[0]].apply(null, call.slice(1));
    });
    return paged;
  }

  // ---- start -------------------------------------------------------------------------------

  var stubCl = w._cl;
  var stubCio = w.cio;
  w.cio = cio;
  w._cl = cl;

  // Events stored by an earlier page (unacknowledged, or sent by beacon) go out first.
  outbox = stored();
  if (outbox.length) schedule(0);

  var waitForReady = new Promise(function (done) {
    setTimeout(done, CONFIG_WAIT_MS);
    if (!writeKey) return done();
    fetch(origin + '/v1/config?writeKey=' + encodeURIComponent(writeKey), { credentials: 'omit' })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (c) {
        if (isObject(c)) config = c;
      }, function () {})
      .then(done);
  }).then(release);
  cio.ready = waitForReady.then(function () { return !!config; });

  // Capture phase for all: clicks and submits before the page can stop them; the other
  // events are dispatched at the target listened on, where the phase makes no difference.
  function listen(target, type, fn) {
    target.addEventListener(type, fn, true);
  }
  listen(d, 'click', noCode);
  listen(d, 'submit', noCode);
  listen(d, 'visibilitychange', function () {
    if (d.visibilityState === 'hidden') onHide();
  });
  listen(w, 'pagehide', onHide);
  listen(w, 'online', pump);

  var paged = replay(stubCl, cl);
  paged = replay(stubCio, cio) || paged;
  if (!paged && (!script || script.getAttribute('data-auto-page') !== 'false')) cio.page();
})(window, document);
