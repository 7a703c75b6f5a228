// The console's one script (served from the console's origin: the CSP admits no inline script).
// 1. Every htmx request carries the CSRF token of the page (<meta name="csrf-token">); forms carry it as a field.
// 2. A form marked data-resubmit (the form the user typed before the session expired, after signing in again) is
//    submitted at once; its button stays for a browser without scripts.
// 3. Charts: an element with data-chart names the chart and carries its series as JSON (from the server's figures).
(function () {
  "use strict";
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  var charts = {
    disclosure: function (element, data) {
      return {
        tooltip: { trigger: "axis" },
        legend: { data: ["收入", "支出", "累计结余"] },
        grid: { left: 100, right: 100 },
        xAxis: { type: "category", data: data.months },
        yAxis: [{ type: "value", name: "元" }, { type: "value", name: "累计结余（元）" }],
        series: [
          { name: "收入", type: "bar", data: data.income.map(Number) },
          { name: "支出", type: "bar", data: data.expenditure.map(Number) },
          { name: "累计结余", type: "line", yAxisIndex: 1, data: data.balance.map(Number) }
        ]
      };
    }
  };

  charts.execution = function (element, data) {
    return {
      tooltip: { trigger: "axis" },
      legend: { data: ["执行率（%）", "时间进度（%）"] },
      grid: { left: 60, right: 40, bottom: 80 },
      xAxis: { type: "category", data: data.items, axisLabel: { rotate: 30 } },
      yAxis: { type: "value", name: "%" },
      series: [
        { name: "执行率（%）", type: "bar", data: data.execution.map(function (v) { return v === null ? null : Number(v); }) },
        { name: "时间进度（%）", type: "line", data: data.items.map(function () { return Number(data.time_progress); }) }
      ]
    };
  };

  function drawCharts(root) {
    if (!window.echarts) { return; }
    root.querySelectorAll("[data-chart]").forEach(function (element) {
      var build = charts[element.getAttribute("data-chart")];
      if (!build || element.getAttribute("data-drawn")) { return; }
      var chart = window.echarts.init(element, null, { renderer: "canvas" });
      chart.setOption(build(element, JSON.parse(element.getAttribute("data-series"))));
      element.setAttribute("data-drawn", "true");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var resubmit = document.querySelector("form[data-resubmit]");
    if (resubmit) { resubmit.submit(); return; }
    drawCharts(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
