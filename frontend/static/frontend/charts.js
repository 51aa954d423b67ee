// Draws the results of a job (frontend/templates/jobs/_results.html) from the data jobs/presenters.py embeds in
// each <figure>: Chart.js for bars, lines and curves, plain HTML for tables and the confusion matrix. Every
// chart's numbers are one click away (a table, and a CSV built in the browser). Words come from the page; this
// file holds none, so the translations stay in one place.
(function () {
  "use strict";
  if (window.FedWebCharts) { return; }  // the results were included twice: the first copy does the work

  var lang = document.documentElement.lang || undefined;
  var PALETTE = ["#1f6feb", "#d4731f", "#2da44e", "#8250df", "#bf3989", "#57606a"];
  var POSITIVE = "#2da44e", NEGATIVE = "#cf222e", REFERENCE = "#8c959f", MARKER = "#cf222e";
  var INK = "#1d2733", GRID = "#e4e9ee";

  // ------------------------------------------------------------------ numbers in the page's language

  var formatters = {};
  function formatter(key, options) {
    if (!formatters[key]) {
      try { formatters[key] = new Intl.NumberFormat(lang, options); } catch (e) { formatters[key] = new Intl.NumberFormat(undefined, options); }
    }
    return formatters[key];
  }
  function fmt(value, kind) {
    if (value === null || value === undefined || value === "") { return "–"; }
    if (kind === "text") { return String(value); }
    if (typeof value !== "number") {
      var parsed = Number(value);
      if (kind === "auto" || isNaN(parsed)) { return String(value); }
      value = parsed;
    }
    if (!isFinite(value)) { return "–"; }
    if (kind === "int") { return formatter("int", { maximumFractionDigits: 0 }).format(value); }
    if (kind === "pct") { return formatter("pct", { style: "percent", maximumFractionDigits: 1 }).format(value); }
    if (kind === "score") { return formatter("score", { minimumFractionDigits: 3, maximumFractionDigits: 3 }).format(value); }
    // AUC, KS and the like: always four decimals, so 0.99996 does not read as a perfect 1.
    if (kind === "metric") { return formatter("metric", { minimumFractionDigits: 4, maximumFractionDigits: 4 }).format(value); }
    var size = Math.abs(value);
    // Enough digits to compare features, not so many that columns become noise.
    var digits = size >= 1000 ? 0 : size >= 100 ? 1 : size >= 1 ? 3 : 4;
    // A small fraction never reads as a whole number (0.99996 is not a perfect 1).
    while (size < 100 && digits < 6 && value !== Math.round(value) &&
           Number(value.toFixed(digits)) === Math.round(value)) { digits++; }
    return formatter("num" + digits, { maximumFractionDigits: digits }).format(value);
  }

  function formatFacts(root) {
    root.querySelectorAll("[data-num]:not([data-formatted])").forEach(function (el) {
      el.dataset.formatted = "1";
      if (el.dataset.num === "" || el.dataset.num === "None") { el.textContent = "–"; return; }
      el.textContent = fmt(Number(el.dataset.num), el.dataset.format || "num");
    });
  }

  // ------------------------------------------------------------------ the numbers behind a chart

  function buildTable(table) {
    var el = document.createElement("table");
    el.className = "grid numbers";
    var head = el.createTHead().insertRow();
    table.columns.forEach(function (col) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = col.label;
      if (col.format !== "text") { th.className = "num"; }
      head.appendChild(th);
    });
    var body = el.createTBody();
    table.rows.forEach(function (row) {
      var tr = body.insertRow();
      row.forEach(function (value, i) {
        var col = table.columns[i] || { format: "text" };
        var td = tr.insertCell();
        td.textContent = fmt(value, col.format);
        if (col.format !== "text" && (col.format !== "auto" || typeof value === "number")) { td.className = "num"; }
      });
    });
    return el;
  }

  function csvCell(value, format) {
    if (value === null || value === undefined) { return ""; }
    var text = String(value);
    // A text cell that a spreadsheet would run as a formula is kept as text (names come from partners too).
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) { text = "'" + text; }
    if (/[",\r\n]/.test(text)) { text = '"' + text.replace(/"/g, '""') + '"'; }
    return text;
  }

  function downloadCsv(table, filename) {
    var lines = [table.columns.map(function (c) { return csvCell(c.label, "text"); }).join(",")];
    table.rows.forEach(function (row) {
      lines.push(row.map(function (v, i) { return csvCell(v, (table.columns[i] || {}).format); }).join(","));
    });
    // The byte-order mark makes spreadsheet programs read the Chinese labels as UTF-8.
    var blob = new Blob(["\ufeff" + lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = filename || "numbers.csv";
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 1000);
  }

  // ------------------------------------------------------------------ Chart.js charts

  function colour(index) { return PALETTE[index % PALETTE.length]; }

  function datasets(spec, current) {
    var index = 0;
    return current.series.map(function (s) {
      var style = s.style || "";
      var base = { label: s.label, data: s.data };
      if (style === "reference") {
        if (spec.kind === "bar") { base.type = "line"; }
        // Drawn under the data and listed after it in the legend (Chart.js orders both by "order").
        return Object.assign(base, { borderColor: REFERENCE, backgroundColor: REFERENCE, borderDash: [6, 4],
          borderWidth: 1.5, pointRadius: 0, pointHoverRadius: 0, showLine: true, fill: false, order: 2 });
      }
      if (style === "marker") {
        return Object.assign(base, { borderColor: MARKER, backgroundColor: MARKER, borderWidth: 2.5, pointRadius: 4,
          showLine: true, order: 0 });
      }
      var c = colour(index++);
      if (spec.kind === "bar" && style !== "line") {
        var fill = c;
        if (spec.options.sign_colors) {
          fill = s.data.map(function (v) { return v !== null && v < 0 ? NEGATIVE : POSITIVE; });
        }
        return Object.assign(base, { backgroundColor: fill, borderColor: fill, borderWidth: 0, borderRadius: 2,
          maxBarThickness: 28, order: 1 });
      }
      var many = s.data.length > 30;
      if (style === "line") { base.type = "line"; }
      return Object.assign(base, { borderColor: c, backgroundColor: c,
        borderWidth: 2, pointRadius: many ? 0 : 3, pointHoverRadius: 4, tension: 0,
        showLine: true, fill: false, order: 1 });
    });
  }

  function axis(title, format, min, max, extra) {
    var result = {
      title: { display: !!title, text: title || "", color: INK },
      grid: { color: GRID },
      ticks: { color: INK, callback: function (value) { return fmt(value, format); } }
    };
    if (min !== undefined && min !== null) { result.min = min; }
    if (max !== undefined && max !== null) { result.max = max; }
    return Object.assign(result, extra || {});
  }

  function chartConfig(spec, current, width) {
    var o = spec.options || {};
    var horizontal = !!o.horizontal;
    var type = spec.kind === "xy" ? "scatter" : spec.kind;
    // Long feature names would squeeze a phone-sized chart to nothing: shorten them on the axis (the
    // tooltip and the numbers keep them whole).
    var longest = width && width < 480 ? 18 : 30;
    var categoryAxis = { title: { display: false }, grid: { display: false }, ticks: { color: INK, autoSkip: !horizontal,
      callback: function (value) {
        var label = String(this.getLabelForValue(value));
        return label.length > longest ? label.slice(0, longest - 1) + "…" : label;
      } } };
    var x, y;
    if (spec.kind === "xy") {
      x = axis(spec.x_label, o.x_format || "num", o.x_min, o.x_max, { type: "linear" });
      y = axis(current.y_label || spec.y_label, o.y_format || "num", o.y_min, o.y_max);
    } else if (horizontal) {
      x = axis(spec.x_label, o.x_format || "num", o.x_min, o.x_max, { stacked: !!o.stacked });
      y = Object.assign(categoryAxis, { stacked: !!o.stacked });
    } else {
      x = Object.assign(categoryAxis, { title: { display: !!spec.x_label, text: spec.x_label || "", color: INK } });
      y = axis(current.y_label || spec.y_label, o.y_format || "num", o.y_min, o.y_max);
    }
    var valueFormat = horizontal ? (o.x_format || "num") : (o.y_format || "num");
    return {
      type: type,
      data: { labels: spec.kind === "xy" ? undefined : current.labels, datasets: datasets(spec, current) },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true, maintainAspectRatio: false, animation: false, normalized: true,
        interaction: spec.kind === "xy" ? { mode: "nearest", intersect: false } : { mode: "index", intersect: false },
        scales: { x: x, y: y },
        plugins: {
          legend: {
            display: current.series.length > 1,
            position: "bottom",
            labels: { boxWidth: 12, color: INK, filter: function (item, data) { return !!data.datasets[item.datasetIndex].label; } }
          },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var name = ctx.dataset.label ? ctx.dataset.label + ": " : "";
                if (spec.kind === "xy") {
                  return name + fmt(ctx.parsed.x, o.x_format || "num") + " → " + fmt(ctx.parsed.y, o.y_format || "num");
                }
                return name + fmt(horizontal ? ctx.parsed.x : ctx.parsed.y, valueFormat);
              }
            }
          }
        }
      }
    };
  }

  function sizeCanvas(figure, spec, current) {
    var box = figure.querySelector(".chart-canvas");
    if (!box) { return; }
    if (spec.options && spec.options.horizontal) {
      // One readable row per bar: a long list of features grows the chart instead of squeezing it.
      var bars = (current.labels || []).length;
      box.style.height = Math.max(200, 26 * bars + 70) + "px";
    } else {
      box.style.height = "";
    }
  }

  // ------------------------------------------------------------------ the confusion matrix

  function drawConfusion(figure, spec) {
    var box = figure.querySelector("[data-role=confusion]");
    var data = spec.confusion;
    var w = data.words;
    var cells = data.cells;
    box.innerHTML = "";

    var control = document.createElement("div");
    control.className = "threshold";
    var label = document.createElement("label");
    var slider = document.createElement("input");
    slider.type = "range";
    slider.min = 0; slider.max = cells.length - 1; slider.step = 1; slider.value = data.default;
    slider.dataset.role = "threshold";
    var output = document.createElement("output");
    output.dataset.role = "threshold-value";
    label.appendChild(document.createTextNode(w.threshold + " "));
    label.appendChild(slider);
    control.appendChild(label);
    control.appendChild(output);
    box.appendChild(control);

    var table = document.createElement("table");
    table.className = "matrix";
    table.innerHTML = "<thead><tr><td></td><th scope='col' colspan='2'></th></tr><tr><td></td><th scope='col'></th>" +
      "<th scope='col'></th></tr></thead><tbody><tr><th scope='row'></th><td data-cell='tn'></td><td data-cell='fp'>" +
      "</td></tr><tr><th scope='row'></th><td data-cell='fn'></td><td data-cell='tp'></td></tr></tbody>";
    var heads = table.querySelectorAll("thead th");
    heads[0].textContent = w.predicted;
    heads[1].textContent = w.non_event;
    heads[2].textContent = w.event;
    var rowHeads = table.querySelectorAll("tbody th");
    rowHeads[0].textContent = w.actual + ": " + w.non_event;
    rowHeads[1].textContent = w.actual + ": " + w.event;
    box.appendChild(table);

    var rates = document.createElement("dl");
    rates.className = "rates";
    box.appendChild(rates);

    function show() {
      var c = cells[Number(slider.value)];
      var text = fmt(c.threshold, "score");
      output.textContent = text;
      slider.setAttribute("aria-valuetext", text);
      var total = c.tp + c.fp + c.fn + c.tn || 1;
      ["tn", "fp", "fn", "tp"].forEach(function (key) {
        var td = table.querySelector("[data-cell=" + key + "]");
        td.innerHTML = "";
        var count = document.createElement("strong");
        count.textContent = fmt(c[key], "int");
        var what = document.createElement("span");
        what.textContent = w[key];
        td.appendChild(count);
        td.appendChild(what);
        td.title = w[key] + ": " + fmt(c[key] / total, "pct");
        // The darker the cell, the more rows it holds; right answers green, wrong ones red.
        var share = c[key] / total;
        var hue = key === "tp" || key === "tn" ? "45, 164, 78" : "207, 34, 46";
        td.style.backgroundColor = "rgba(" + hue + "," + (0.08 + 0.5 * share).toFixed(3) + ")";
      });
      var flagged = c.tp + c.fp;
      var precision = flagged ? c.tp / flagged : 0;
      var recall = c.tp + c.fn ? c.tp / (c.tp + c.fn) : 0;
      var f1 = c.tp ? 2 * c.tp / (2 * c.tp + c.fp + c.fn) : 0;
      var items = [[w.flagged, fmt(flagged, "int")], [w.precision, fmt(precision, "pct")],
        [w.recall, fmt(recall, "pct")], [w.accuracy, fmt((c.tp + c.tn) / total, "pct")], [w.f1, fmt(f1, "num")]];
      rates.innerHTML = "";
      items.forEach(function (item) {
        var div = document.createElement("div");
        var dt = document.createElement("dt"); dt.textContent = item[0];
        var dd = document.createElement("dd"); dd.textContent = item[1];
        div.appendChild(dt); div.appendChild(dd); rates.appendChild(div);
      });
    }
    slider.addEventListener("input", show);
    show();
  }

  // ------------------------------------------------------------------ one figure

  var counter = 0;

  function init(figure) {
    if (figure.dataset.drawn) { return; }
    figure.dataset.drawn = "1";
    var script = figure.querySelector("script[type='application/json']");
    if (!script) { return; }
    var spec = JSON.parse(script.textContent);
    spec.options = spec.options || {};
    var current = { labels: spec.labels, series: spec.series, table: spec.table, y_label: spec.y_label };
    var numbers = figure.querySelector("[data-role=numbers]");
    var toggle = figure.querySelector("[data-role=toggle]");
    var tools = figure.querySelector("[data-role=tools]");
    var chart = null;

    function renderNumbers() {
      if (!numbers || (numbers.hidden && spec.kind !== "table")) { return; }
      numbers.innerHTML = "";
      numbers.appendChild(buildTable(current.table));
    }

    if (spec.kind === "confusion") {
      drawConfusion(figure, spec);
    } else if (spec.kind !== "table") {
      var canvas = figure.querySelector("canvas");
      if (canvas && window.Chart) {
        sizeCanvas(figure, spec, current);
        chart = new window.Chart(canvas, chartConfig(spec, current, figure.clientWidth));
        figure.fedwebChart = chart;  // tests and the console can reach the drawn chart
      }
    }
    renderNumbers();

    var select = figure.querySelector("[data-role=variant]");
    if (select && spec.variants) {
      select.addEventListener("change", function () {
        var item = spec.variants.items[Number(select.value)];
        current = { labels: item.labels, series: item.series, table: item.table, y_label: item.y_label || spec.y_label };
        if (chart) {
          sizeCanvas(figure, spec, current);
          var next = chartConfig(spec, current, figure.clientWidth);
          chart.data = next.data;
          chart.options.scales.y = next.options.scales.y;
          chart.update();
        }
        renderNumbers();
      });
    }

    if (toggle && numbers) {
      numbers.id = numbers.id || "fedweb-numbers-" + (++counter);
      toggle.setAttribute("aria-controls", numbers.id);
      toggle.addEventListener("click", function () {
        var open = numbers.hidden;
        numbers.hidden = !open;
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
        toggle.textContent = open ? toggle.dataset.hide : toggle.dataset.show;
        renderNumbers();
      });
    }
    var csv = figure.querySelector("[data-role=csv]");
    if (csv) {
      csv.addEventListener("click", function () {
        var name = spec.filename;
        if (spec.variants && select) {
          name = name.replace(/\.csv$/, "") + "-" + spec.variants.items[Number(select.value)].key + ".csv";
        }
        downloadCsv(current.table, name);
      });
    }
    if (tools) { tools.hidden = false; }
  }

  function drawAll(root) {
    root = root || document;
    if (root.closest && root.closest("[data-fedweb-results]")) {
      formatFacts(root);
    } else {
      root.querySelectorAll("[data-fedweb-results]").forEach(formatFacts);
    }
    root.querySelectorAll("figure[data-chart-kind]").forEach(function (figure) {
      try { init(figure); } catch (err) {
        // One chart whose data this code does not understand must not take the others down.
        if (window.console) { window.console.error("chart", figure.dataset.testid, err); }
      }
    });
  }

  function setDefaults() {
    if (!window.Chart) { return; }
    var font = getComputedStyle(document.documentElement).fontFamily;
    window.Chart.defaults.font.family = font;
    window.Chart.defaults.font.size = 12;
    window.Chart.defaults.color = INK;
  }

  window.FedWebCharts = { draw: drawAll, format: fmt };
  function start() { setDefaults(); drawAll(document); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  // Results swapped into the page later (htmx) are drawn as they arrive.
  document.addEventListener("htmx:load", function (event) { if (event.target && event.target.querySelectorAll) { drawAll(event.target); } });
})();
