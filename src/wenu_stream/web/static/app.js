// The backoffice's charts: uPlot over data the server embeds as JSON (no build step).
// A chart element: <div class="chart" data-chart='{"x":[...],"series":[{"label","values"}],"markers":[...]}'>
(function () {
  "use strict";
  var STATE_COLORS = { firing: "#b3261e", ok: "#2e7d32", pending: "#d29b00" };
  var LINE_COLORS = ["#1f5fbf", "#9aa5b8", "#9aa5b8", "#7b3fb5"];

  function markerPlugin(markers) {
    // Vertical lines at transition times: solid for what was notified, dashed for what a draft would do.
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
          markers.forEach(function (m) {
            var x = Math.round(u.valToPos(m.t, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.save();
            ctx.strokeStyle = STATE_COLORS[m.to_state] || "#555";
            ctx.lineWidth = 2 * devicePixelRatio;
            if (m.kind === "would") { ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]); }
            var y0 = m.kind === "would" ? top : top + height / 2, y1 = m.kind === "would" ? top + height / 2 : top + height;
            ctx.beginPath(); ctx.moveTo(x, y0); ctx.lineTo(x, y1); ctx.stroke();
            ctx.restore();
          });
        }]
      }
    };
  }

  function levelPlugin(levels) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          levels.forEach(function (l) {
            var y = Math.round(u.valToPos(l.value, "y", true));
            ctx.save(); ctx.strokeStyle = l.color || "#b3261e"; ctx.setLineDash([3, 3]);
            ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
            ctx.fillStyle = l.color || "#b3261e"; ctx.textAlign = "right";
            ctx.font = (12 * devicePixelRatio) + "px sans-serif";
            ctx.fillText(l.label, u.bbox.left + u.bbox.width - 4, y - 4);
            ctx.restore();
          });
        }]
      }
    };
  }

  function draw(el) {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    var spec = JSON.parse(el.dataset.chart);
    el.dataset.drawn = "1";
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var series = [{ label: "time (" + spec.timezone + ")" }].concat(spec.series.map(function (s, i) {
      return { label: s.label, stroke: LINE_COLORS[i % LINE_COLORS.length], width: i === 0 ? 2 : 1,
               paths: spec.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined, fill: spec.bars ? "#1f5fbf33" : undefined };
    }));
    var opts = {
      width: Math.max(320, el.clientWidth - 16), height: 300, series: series, tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), spec.timezone); },
      axes: [{}, { label: spec.unit || "" }],
      scales: spec.range ? { x: { time: true, range: function () { return spec.range; } } } : undefined,
      plugins: [markerPlugin(spec.markers || []), levelPlugin(spec.levels || [])],
    };
    el.textContent = "";
    el.uplot = new uPlot(opts, data, el);
  }

  // Inputs keep what is typed across the editor's re-renders (hx-preserve); their validity follows the messages.
  function markInvalid(root) {
    root.querySelectorAll("input[hx-preserve][id^='r-']").forEach(function (input) {
      var error = document.getElementById("e-" + input.id.slice(2));
      if (error) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", error.id); }
      else { input.removeAttribute("aria-invalid"); input.removeAttribute("aria-describedby"); }
    });
  }

  function drawAll(root) { (root || document).querySelectorAll("[data-chart]").forEach(draw); }
  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (e) { drawAll(e.target); markInvalid(document); });
})();
