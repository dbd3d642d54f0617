// Draws the admin dashboard's charts with plotly.js from the JSON the page embeds.
"use strict";

function readData(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

function drawFunnel() {
  const stages = readData("funnel-data");
  Plotly.newPlot("funnel-chart", [{
    type: "funnel",
    name: "Messages",
    y: stages.map((stage) => stage.stage),
    x: stages.map((stage) => stage.count),
    textinfo: "value+percent initial",
  }], {margin: {l: 100, r: 20, t: 20, b: 40}}, {responsive: true});
}

function drawChannels() {
  const rows = readData("channel-data");
  const labels = rows.map((row) => row.provider ? `${row.channel}/${row.provider}` : row.channel);
  const rates = [
    ["delivery_rate", "Delivery rate"],
    ["open_rate", "Open rate"],
    ["click_rate", "Click rate"],
    ["failure_rate", "Failure rate"],
  ];
  const traces = rates.map(([key, name]) => ({
    type: "bar",
    name: name,
    x: labels,
    y: rows.map((row) => row[key]),
  }));
  const layout = {
    barmode: "group",
    yaxis: {title: {text: "Rate"}, range: [0, 1]},
    margin: {l: 60, r: 20, t: 20, b: 60},
  };
  if (rows.length === 0) {
    // Without categories plotly.js would draw a numeric x axis from -1 to 6.
    layout.xaxis = {visible: false};
    layout.annotations = [{text: "No messages in this range", showarrow: false,
                           xref: "paper", yref: "paper", x: 0.5, y: 0.5}];
  }
  Plotly.newPlot("channel-chart", traces, layout, {responsive: true});
}

function drawSeries() {
  const rows = readData("series-data");
  const days = rows.map((row) => row.day);
  const traces = ["sent", "delivered", "opened", "clicked", "failed"].map((key) => ({
    type: "scatter",
    mode: "lines+markers",
    name: key,
    x: days,
    y: rows.map((row) => row[key]),
  }));
  // Tick whole days, about ten at most, because plotly.js picks hours for a short range.
  const daysPerTick = Math.max(1, Math.ceil(days.length / 10));
  Plotly.newPlot("series-chart", traces, {
    xaxis: {type: "date", tickformat: "%Y-%m-%d", dtick: daysPerTick * 86400000},
    yaxis: {title: {text: "Messages"}, rangemode: "nonnegative"},
    margin: {l: 60, r: 20, t: 20, b: 40},
  }, {responsive: true});
}

document.addEventListener("DOMContentLoaded", () => {
  drawFunnel();
  drawChannels();
  drawSeries();
});
