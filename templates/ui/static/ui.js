// The viewer's only script. Record data reaches the page as text only
// (textContent, createTextNode, attribute values set with setAttribute on
// elements of ours): never innerHTML, never as markup, a URL or code.
'use strict'
;(function () {
  function el(tag, text, cls) {
    var e = document.createElement(tag)
    if (text !== undefined && text !== null) e.textContent = String(text)
    if (cls) e.className = cls
    return e
  }
  function recordLink(id, text) {
    var a = el('a', text || '(open)')
    // an id is a UUID (the server sends only those); encodeURIComponent all the same
    a.setAttribute('href', '/records/' + encodeURIComponent(id))
    return a
  }
  function statusClass(status) {
    return typeof status === 'number' ? 's' + String(status).charAt(0) + 'xx' : ''
  }

  // detail: copy as curl
  var copy = document.getElementById('copy-curl')
  if (copy) {
    copy.addEventListener('click', function () {
      var text = document.getElementById('curl').textContent
      var state = document.getElementById('copy-state')
      var done = function () {
        state.textContent = 'copied'
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () {
          state.textContent = 'select the text and copy it'
        })
      } else {
        var range = document.createRange()
        range.selectNodeContents(document.getElementById('curl'))
        var sel = window.getSelection()
        sel.removeAllRanges()
        sel.addRange(range)
        state.textContent = 'selected: copy it'
      }
    })
  }

  // live tail: server-sent events, pausable; the newest on top, at most 500 rows shown
  var tail = document.getElementById('tail')
  if (tail) {
    var body = tail.querySelector('tbody')
    var state = document.getElementById('tail-state')
    var pause = document.getElementById('pause')
    var paused = false
    var held = []
    var shown = 0
    var add = function (r) {
      var tr = el('tr', null, statusClass(r.status))
      tr.setAttribute('data-id', r.id)
      r.cells.forEach(function (text, i) {
        var td = el('td')
        if (i === 0) td.appendChild(recordLink(r.id, text))
        else td.textContent = text
        tr.appendChild(td)
      })
      body.insertBefore(tr, body.firstChild)
      shown++
      while (body.rows.length > 500) body.deleteRow(body.rows.length - 1)
    }
    var say = function () {
      state.textContent = paused ? 'paused: ' + held.length + ' new record(s) waiting' : 'live: ' + shown + ' record(s) shown'
    }
    var source = new EventSource(tail.getAttribute('data-stream'))
    source.addEventListener('open', say)
    source.addEventListener('record', function (e) {
      var r = JSON.parse(e.data)
      if (paused) {
        held.push(r)
        if (held.length > 1000) held.shift()
      } else add(r)
      say()
    })
    source.addEventListener('failure', function (e) {
      state.textContent = 'the stream failed: ' + JSON.parse(e.data)
    })
    source.addEventListener('error', function () {
      state.textContent = 'disconnected; retrying…'
    })
    pause.addEventListener('click', function () {
      paused = !paused
      pause.textContent = paused ? 'Resume' : 'Pause'
      pause.setAttribute('data-paused', String(paused))
      if (!paused) {
        held.forEach(add)
        held = []
      }
      say()
    })
  }

  // dashboard: figures, top lists and charts from /api/stats
  var dash = document.getElementById('dashboard')
  if (dash) {
    var dstate = document.getElementById('dash-state')
    fetch(dash.getAttribute('data-source'), {credentials: 'same-origin', headers: {accept: 'application/json'}})
      .then(function (res) {
        return res.json().then(function (data) {
          if (!res.ok) throw new Error(data.error || 'HTTP ' + res.status)
          return data
        })
      })
      .then(function (data) {
        dstate.textContent = ''
        if (data.logType === 'event') return drawEvents(data.summary)
        drawStats(data.stats, data.bucket)
      })
      .catch(function (err) {
        dstate.textContent = 'The figures could not be loaded: ' + err.message
      })
  }

  function figure(label, value) {
    var box = el('div', null, 'figure')
    box.appendChild(el('span', value, 'value'))
    box.appendChild(el('span', label, 'label'))
    document.getElementById('figures').appendChild(box)
  }
  function ms(v) {
    return v === null || v === undefined ? '–' : Number(v).toFixed(1) + ' ms'
  }
  function topTable(title, head, rows, link) {
    var section = el('section', null, 'top')
    section.appendChild(el('h2', title))
    var table = el('table', null, 'records')
    var tr = el('tr')
    head.forEach(function (h) {
      tr.appendChild(el('th', h))
    })
    table.appendChild(el('thead')).appendChild(tr)
    var tbody = el('tbody')
    rows.forEach(function (cells) {
      var row = el('tr')
      cells.forEach(function (c, i) {
        var td = el('td')
        if (i === 0 && link) {
          var a = el('a', c)
          a.setAttribute('href', link(c))
          td.appendChild(a)
        } else td.textContent = c
        row.appendChild(td)
      })
      tbody.appendChild(row)
    })
    table.appendChild(tbody)
    section.appendChild(table)
    if (!rows.length) section.appendChild(el('p', 'none', 'empty'))
    document.getElementById('tops').appendChild(section)
  }
  /** A link to the list with one more filter field: the value is a query parameter, encoded by URLSearchParams. */
  function listWith(field, glob) {
    return function (value) {
      var q = new URLSearchParams(location.search)
      var type = q.get('type') || 'request'
      q.delete('type')
      q.set(field, glob ? globOf(value) : value)
      return '/logs/' + encodeURIComponent(type) + '?' + q.toString()
    }
  }
  // a path as a glob matching only itself: the glob's own characters escaped as a regex instead
  function globOf(path) {
    return /[*?]/.test(path) || path.charAt(0) !== '/' ? '~^' + path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$' : path
  }

  function drawStats(s, bucket) {
    figure('records', s.total.toLocaleString('en'))
    figure('error rate (5xx)', (s.errorRate * 100).toFixed(2) + ' %')
    figure('p50', ms(s.durationMs.p50))
    figure('p95', ms(s.durationMs.p95))
    figure('p99', ms(s.durationMs.p99))
    figure('slow', s.slow.toLocaleString('en'))
    figure('suspicious', s.suspicious.toLocaleString('en'))
    Object.keys(s.byClass).forEach(function (k) {
      figure(k, s.byClass[k].toLocaleString('en'))
    })
    if (s.approximate && s.approximate.length) figure('estimated', s.approximate.join(', '))
    Array.prototype.forEach.call(document.querySelectorAll('.bucket'), function (b) {
      b.textContent = bucket
    })
    topTable(
      'slowest endpoints',
      ['path', 'records', 'mean', 'max'],
      (s.slowPaths || []).map(function (p) {
        return [p.path, p.count, ms(p.avgMs), ms(p.maxMs)]
      }),
      listWith('path', true),
    )
    topTable(
      'most failing endpoints',
      ['path', '5xx', 'records'],
      (s.failingPaths || []).map(function (p) {
        return [p.path, p.errors, p.count]
      }),
      listWith('path', true),
    )
    topTable('busiest paths', ['path', 'records'], s.topPaths.map(function (p) { return [p.path, p.count] }), listWith('path', true))
    topTable('top users', ['user', 'records'], s.topUsers.map(function (p) { return [p.user, p.count] }), listWith('user'))
    topTable('top addresses', ['ip', 'records'], s.topIps.map(function (p) { return [p.ip, p.count] }), listWith('ip'))
    var xs = s.histogram.map(function (h) {
      return Date.parse(h.period) / 1000
    })
    var counts = s.histogram.map(function (h) {
      return h.count
    })
    var errors = s.histogram.map(function (h) {
      return h.errors
    })
    var rate = s.histogram.map(function (h) {
      return h.count ? (100 * h.errors) / h.count : 0
    })
    chart('chart-volume', [xs, counts, errors], [
      {label: 'records', stroke: '#2563eb', fill: 'rgba(37,99,235,0.12)'},
      {label: '5xx', stroke: '#dc2626'},
    ])
    chart('chart-errors', [xs, rate], [{label: '5xx %', stroke: '#dc2626', fill: 'rgba(220,38,38,0.1)'}])
  }

  function drawEvents(e) {
    figure('events', e.total.toLocaleString('en'))
    figure('failed logins', e.failedLogins.total.toLocaleString('en'))
    figure('exports', e.exports.total.toLocaleString('en'))
    figure('records exported', e.exports.records.toLocaleString('en'))
    document.querySelector('.charts').hidden = true
    topTable('by action', ['action', 'events'], e.byAction.map(function (p) { return [p.action, p.count] }), listWith('action'))
    topTable('by actor', ['actor', 'events'], e.byActor.map(function (p) { return [p.actor, p.count] }), listWith('actor'))
    topTable('by target type', ['target', 'events'], e.byTargetType.map(function (p) { return [p.type, p.count] }), listWith('target'))
    topTable('by severity', ['severity', 'events'], e.bySeverity.map(function (p) { return [p.severity, p.count] }), listWith('severity'))
    topTable('failed logins by actor', ['actor', 'failed'], e.failedLogins.byActor.map(function (p) { return [p.actor, p.count] }), listWith('actor'))
    topTable('failed logins by address', ['ip', 'failed'], e.failedLogins.byIp.map(function (p) { return [p.ip, p.count] }), listWith('ip'))
  }

  function chart(id, data, series) {
    var box = document.getElementById(id)
    if (!window.uPlot || !box) return
    var opts = {
      width: Math.max(320, box.clientWidth || 600),
      height: 220,
      series: [{}].concat(
        series.map(function (s) {
          return {label: s.label, stroke: s.stroke, fill: s.fill, width: 2, points: {show: data[0].length < 60}}
        }),
      ),
      axes: [{}, {size: 60}],
      scales: {x: {time: true}},
    }
    box.setAttribute('data-points', String(data[0].length))
    new window.uPlot(opts, data, box)
  }
})()
