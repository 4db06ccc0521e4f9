// The editors' calendar: FullCalendar over /api/v1/calendar with drag & drop, filters kept in
// the URL, a time-zone switch, observance and quota overlays, and the unscheduled side panel.
//
// Time zones: the calendar runs in a *named* zone without a time-zone plugin, so FullCalendar
// keeps each event's wall-clock time as the server wrote it (the feed answers in the zone we
// ask for, with its offset). On a move we send the new wall-clock time plus the zone name and
// let the server (zoneinfo) turn it into UTC — DST included.
(function () {
  'use strict';
  const cfgEl = document.getElementById('calendar-config');
  const el = document.getElementById('calendar');
  if (!cfgEl || !el || !window.FullCalendar) return;
  const cfg = JSON.parse(cfgEl.textContent);
  const t = cfg.i18n;
  const params = new URLSearchParams(window.location.search);
  const browserTz = (Intl.DateTimeFormat().resolvedOptions().timeZone) || '';
  let tz = params.get('tz') || cfg.userTimeZone || cfg.teamTimeZone;
  const hiddenObs = new Set((params.get('obs_off') || '').split(',').filter(Boolean));
  const FILTERS = ['channel', 'audience', 'style', 'campaign', 'status', 'author'];
  const STATUS_ICONS = {
    draft: 'bi-pencil', in_review: 'bi-hourglass-split', changes_requested: 'bi-arrow-counterclockwise',
    approved: 'bi-check2', scheduled: 'bi-clock', publishing: 'bi-send', published: 'bi-check2-all',
    retrying: 'bi-arrow-repeat', failed: 'bi-x-octagon', unknown: 'bi-question-diamond',
    awaiting_staff: 'bi-person-check', missed: 'bi-exclamation-triangle', cancelled: 'bi-slash-circle',
  };

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, key) => (values[key] !== undefined ? values[key] : ''));
  }

  // --- messages ----------------------------------------------------------------------------
  const box = document.getElementById('cal-message');
  let hideTimer = null;
  function message(kind, text) {
    box.className = 'alert py-2 alert-' + kind;
    box.dataset.kind = kind;
    box.textContent = text;
    clearTimeout(hideTimer);
    if (kind === 'success') hideTimer = setTimeout(() => box.classList.add('d-none'), 6000);
  }

  // --- filters and URL ---------------------------------------------------------------------
  const form = document.getElementById('cal-filters');
  function filterParams() {
    const out = {};
    FILTERS.forEach((key) => {
      const field = form.elements[key];
      if (field && field.value) out[key] = field.value;
    });
    return out;
  }
  function wall(date) { return date.toISOString().slice(0, 19); }
  function rangeParams() {
    const view = calendar.view;
    return { start: wall(view.activeStart), end: wall(view.activeEnd), timeZone: tz };
  }
  function syncUrl() {
    const q = new URLSearchParams(filterParams());
    q.set('view', calendar.view.type);
    q.set('date', wall(calendar.getDate()).slice(0, 10));
    if (tz !== (cfg.userTimeZone || cfg.teamTimeZone)) q.set('tz', tz);
    if (hiddenObs.size) q.set('obs_off', Array.from(hiddenObs).join(','));
    window.history.replaceState(null, '', window.location.pathname + '?' + q.toString());
    const exportQuery = new URLSearchParams({ ...rangeParams(), ...filterParams() }).toString();
    document.getElementById('cal-export-csv').href = cfg.exportUrl + 'csv?' + exportQuery;
    document.getElementById('cal-export-json').href = cfg.exportUrl + 'json?' + exportQuery;
  }

  // --- time zone switch --------------------------------------------------------------------
  const tzSelect = document.getElementById('cal-tz');
  function tzOptions() {
    const seen = new Set();
    const options = [];
    function add(value, label) {
      if (!value || seen.has(value)) return;
      seen.add(value);
      options.push([value, label + ' · ' + value]);
    }
    add(cfg.teamTimeZone, t.teamTime);
    add(cfg.userTimeZone, t.myTime);
    add(browserTz, t.browserTime);
    add(tz, tz);
    tzSelect.replaceChildren(...options.map(([value, label]) => {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = label;
      option.selected = value === tz;
      return option;
    }));
  }
  tzOptions();

  function wallNow() {
    // "sv-SE" formats as "YYYY-MM-DD HH:MM:SS": the wall clock in the calendar's zone.
    return new Date().toLocaleString('sv-SE', { timeZone: tz, hour12: false }).replace(' ', 'T');
  }

  // --- event rendering ---------------------------------------------------------------------
  function statusLabel(status) { return cfg.statusLabels[status] || status; }
  function hasConflict(p) { return Boolean(p.conflicts_with && p.conflicts_with.length); }

  function tooltip(p) {
    const lines = [p.channel.name + ' · ' + statusLabel(p.status)];
    if (p.audience) lines.push(t.audience + ': ' + p.audience.name);
    if (p.style) lines.push(t.style + ': ' + p.style.name);
    if (p.campaign) lines.push(t.campaign + ': ' + p.campaign.name);
    if (p.author) lines.push(t.author + ': ' + p.author.name);
    if (hasConflict(p)) lines.push('⚠ ' + t.conflict);
    if (p.group) {
      lines.push(fmt(t.groupTip, { n: p.group.size }));
      p.group.posts.forEach((a) => lines.push(a.position + '. ' + a.title));
    }
    const m = p.metrics || {};
    if (m.reads || m.likes || m.comments || m.shares) {
      lines.push([t.reads + ' ' + m.reads, t.likes + ' ' + m.likes, t.comments + ' ' + m.comments,
        t.shares + ' ' + m.shares].join(' · '));
    }
    return lines.join('\n');
  }

  function eventContent(arg) {
    const p = arg.event.extendedProps;
    if (!p.post_id) return true; // observances and quota marks: default rendering
    const wrap = document.createElement('div');
    wrap.className = 'co-event';
    const icon = document.createElement('i');
    icon.className = 'bi ' + (STATUS_ICONS[p.status] || 'bi-circle') + ' co-status-icon';
    icon.setAttribute('aria-label', statusLabel(p.status));
    wrap.appendChild(icon);
    if (arg.timeText) {
      const time = document.createElement('span');
      time.className = 'co-time';
      time.textContent = arg.timeText + ' ';
      wrap.appendChild(time);
    }
    const title = document.createElement('span');
    title.className = 'co-title';
    title.textContent = arg.event.title;
    wrap.appendChild(title);
    if (p.group) {
      // One message on the 公众号: the 头条 here, its 次条 counted (listed in the tooltip).
      const badge = document.createElement('span');
      badge.className = 'badge text-bg-light border ms-1 co-group';
      badge.textContent = fmt(t.groupBadge, { n: p.group.others });
      wrap.appendChild(badge);
    }
    if (hasConflict(p)) {
      const warn = document.createElement('i');
      warn.className = 'bi bi-exclamation-circle-fill co-conflict-icon';
      warn.setAttribute('aria-label', t.conflict);
      wrap.appendChild(warn);
    }
    const meta = [p.audience && p.audience.name, p.style && p.style.name].filter(Boolean).join(' · ');
    if (meta) {
      const sub = document.createElement('div');
      sub.className = 'co-meta';
      sub.textContent = meta;
      wrap.appendChild(sub);
    }
    return { domNodes: [wrap] };
  }

  function eventDidMount(arg) {
    const p = arg.event.extendedProps;
    if (p.post_id) {
      arg.el.dataset.postId = p.post_id;
      arg.el.dataset.status = p.status;
      if (p.group) {
        arg.el.dataset.groupSize = p.group.size;
        arg.el.dataset.groupPosts = p.group.posts.map((a) => a.id).join(',');
      }
      arg.el.title = tooltip(p);
    } else if (p.observance) {
      arg.el.dataset.observance = p.observance;
    } else if (p.quota !== undefined) {
      // A quota mark: say on hover which channel's quota it is.
      arg.el.dataset.quotaChannel = p.channel_id;
      if (p.mass_send) arg.el.dataset.massSend = p.mass_send;
      arg.el.title = arg.event.title;
    }
  }

  // --- moving posts ------------------------------------------------------------------------
  function addDelta(wallTime, delta) {
    const d = new Date(wallTime + 'Z');
    d.setUTCFullYear(d.getUTCFullYear() + (delta.years || 0));
    d.setUTCMonth(d.getUTCMonth() + (delta.months || 0));
    d.setUTCDate(d.getUTCDate() + (delta.days || 0));
    return wall(new Date(d.getTime() + (delta.milliseconds || 0)));
  }

  async function move(postId, newWall) {
    let res;
    try {
      res = await ContentOps.api('PATCH', cfg.moveUrl + postId,
        { scheduled_at: newWall, timezone: tz });
    } catch (e) {
      return { ok: false, reason: t.networkError };
    }
    if (!res.ok) {
      const err = (res.data && res.data.error) || {};
      const fieldMsgs = Object.values(err.fields || {}).flat();
      return { ok: false, reason: fieldMsgs[0] || err.message || t.networkError };
    }
    return { ok: true, warnings: (res.data && res.data.warnings) || [] };
  }

  function reportMove(result, newWall) {
    if (!result.ok) {
      message('danger', fmt(t.refused, { reason: result.reason }));
      return;
    }
    const text = fmt(t.moved, { time: newWall.replace('T', ' ').slice(0, 16) });
    if (result.warnings.length) message('warning', [text].concat(result.warnings.map((w) => w.message)).join(' '));
    else message('success', text);
  }

  function refresh() {
    calendar.getEventSources().forEach((source) => source.refetch());
    loadUnscheduled();
    syncUrl();
  }

  async function onEventDrop(info) {
    const p = info.event.extendedProps;
    const newWall = addDelta(p.wall, info.delta);
    const result = await move(p.post_id, newWall);
    if (!result.ok) info.revert();
    reportMove(result, newWall);
    if (result.ok) refresh();
  }

  async function onEventReceive(info) {
    const postId = info.event.extendedProps.post_id;
    let newWall = wall(info.event.start);
    if (info.event.allDay) newWall = newWall.slice(0, 10) + 'T09:00:00';
    const result = await move(postId, newWall);
    info.event.remove(); // the feed brings the real event back
    reportMove(result, newWall);
    if (result.ok) refresh();
  }

  // --- creating from a day or slot ----------------------------------------------------------
  function onDateClick(info) {
    if (!cfg.canEdit) return;
    const date = info.dateStr.slice(0, 10);
    const time = info.allDay ? '09:00' : info.dateStr.slice(11, 16);
    const q = new URLSearchParams({ date, time, tz });
    window.location.assign(cfg.newPieceUrl + '?' + q.toString());
  }

  // --- calendar ----------------------------------------------------------------------------
  const calendar = new FullCalendar.Calendar(el, {
    timeZone: tz,
    locale: cfg.locale,
    initialView: params.get('view') || 'dayGridMonth',
    initialDate: params.get('date') || undefined,
    headerToolbar: { left: 'prev,next today', center: 'title', right: 'dayGridMonth,timeGridWeek,timeGridDay,listWeek' },
    firstDay: 1,
    height: 'auto',
    nowIndicator: true,
    now: wallNow,
    dayMaxEvents: 6,
    editable: cfg.canEdit,
    droppable: cfg.canEdit,
    eventDurationEditable: false,
    defaultTimedEventDuration: '00:30',
    snapDuration: '00:15',
    scrollTime: '08:00:00',
    eventTimeFormat: { hour: '2-digit', minute: '2-digit', hour12: false },
    eventSources: [
      {
        id: 'posts', url: cfg.feedUrl, extraParams: filterParams,
        failure: () => message('danger', t.networkError),
      },
      { id: 'quota', url: cfg.quotaUrl, extraParams: () => ({ channel: filterParams().channel || '' }) },
      { id: 'observances', url: cfg.observancesUrl, extraParams: () => ({ hide: Array.from(hiddenObs).join(',') }) },
    ],
    eventDataTransform(data) {
      if (data.extendedProps && data.extendedProps.post_id) {
        // The wall-clock time in the calendar's zone, kept for computing moves.
        data.extendedProps.wall = String(data.start).slice(0, 19);
      }
      return data;
    },
    eventAllow(dropInfo) {
      // A post needs a time of day: no drops into the all-day row of the week/day views.
      return !(dropInfo.allDay && calendar.view.type.startsWith('timeGrid'));
    },
    eventContent,
    eventDidMount,
    eventDrop: onEventDrop,
    eventReceive: onEventReceive,
    dateClick: onDateClick,
    eventClick(info) {
      const p = info.event.extendedProps;
      if (p.piece_id) {
        info.jsEvent.preventDefault();
        window.location.assign(cfg.pieceUrl + p.piece_id);
      }
    },
    datesSet: syncUrl,
    loading(isLoading) { el.dataset.loading = isLoading ? '1' : '0'; },
  });
  calendar.render();
  window.ContentOpsCalendar = calendar; // for debugging and browser tests

  form.addEventListener('change', refresh);
  form.addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
  tzSelect.addEventListener('change', () => {
    tz = tzSelect.value;
    calendar.removeAllEvents();
    calendar.setOption('timeZone', tz);
    calendar.setOption('now', wallNow);
    refresh();
  });

  // --- observance toggles ------------------------------------------------------------------
  const obsMenu = document.getElementById('cal-observances');
  cfg.observances.forEach((item) => {
    const wrapper = document.createElement('div');
    wrapper.className = 'form-check';
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.className = 'form-check-input';
    input.id = 'obs-' + item.key;
    input.checked = !hiddenObs.has(item.key);
    input.addEventListener('change', () => {
      if (input.checked) hiddenObs.delete(item.key); else hiddenObs.add(item.key);
      calendar.getEventSourceById('observances').refetch();
      syncUrl();
    });
    const label = document.createElement('label');
    label.className = 'form-check-label';
    label.htmlFor = input.id;
    label.textContent = item.name;
    wrapper.append(input, label);
    obsMenu.appendChild(wrapper);
  });

  // --- unscheduled side panel --------------------------------------------------------------
  const list = document.getElementById('cal-unscheduled');
  async function loadUnscheduled() {
    const res = await ContentOps.api('GET', cfg.unscheduledUrl + '?' + new URLSearchParams(filterParams()));
    if (!res.ok) return;
    if (!res.data.length) {
      const li = document.createElement('li');
      li.className = 'list-group-item small text-body-secondary';
      li.textContent = t.noUnscheduled;
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(...res.data.map((item) => {
      const li = document.createElement('li');
      li.className = 'list-group-item small' + (cfg.canEdit ? ' cal-draggable' : '');
      li.dataset.postId = item.post_id;
      li.dataset.title = item.title;
      li.dataset.color = item.channel.color;
      const dot = document.createElement('span');
      dot.className = 'channel-dot';
      dot.style.background = item.channel.color;
      const title = document.createElement('a');
      title.href = cfg.pieceUrl + item.piece_id;
      title.textContent = item.title;
      const meta = document.createElement('div');
      meta.className = 'text-body-secondary';
      meta.textContent = [item.channel.name, item.status_label, item.audience && item.audience.name,
        item.style && item.style.name].filter(Boolean).join(' · ');
      li.append(dot, title, meta);
      return li;
    }));
  }
  if (cfg.canEdit) {
    new FullCalendar.Draggable(list, {
      itemSelector: '.cal-draggable',
      eventData(itemEl) {
        return {
          title: itemEl.dataset.title, color: itemEl.dataset.color, create: true,
          startTime: '09:00', duration: '00:30',
          extendedProps: { post_id: Number(itemEl.dataset.postId) },
        };
      },
    });
  }
  loadUnscheduled();
}());
