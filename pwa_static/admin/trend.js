/**
 * The 12-week trend, drawn by the vendored Chart.js (window.Chart, a classic script loaded
 * before the modules). Canvas only, animation off: nothing needs eval or inline styles.
 *
 * @module admin/trend
 */

import { h } from "./dom.js";
import { t } from "./i18n.js";

let chart = null;

/** Draw (or redraw) `weeks` — [{period, due, visited, coverage}] oldest first — on `canvas`. */
export function drawTrend(canvas, weeks) {
  const Chart = window.Chart;
  if (!Chart) throw new Error("Chart.js did not load");
  const labels = weeks.map((week) => week.period.replace(/^\d{4}-/, ""));
  const values = weeks.map((week) => Math.round(week.coverage * 1000) / 10);
  canvas.ariaLabel = t("trend.title");
  if (chart) chart.destroy();
  chart = new Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: [
        {
          label: t("trend.coverage"),
          data: values,
          borderColor: "#b3261e",
          backgroundColor: "rgba(179, 38, 30, 0.12)",
          fill: true,
          tension: 0.2,
          pointRadius: 3,
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { y: { min: 0, max: 100, ticks: { callback: (value) => `${value}%` } } },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            afterLabel: (item) => {
              const week = weeks[item.dataIndex];
              return `${week.visited} / ${week.due}`;
            },
          },
        },
      },
    },
  });
  return chart;
}

/** The trend as a table, for screen readers: a canvas has no text of its own. */
export function trendTable(table, weeks) {
  table.replaceChildren(
    h("caption", {}, t("trend.title")),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["col.week", "tile.due", "tile.visited", "tile.coverage"].map((key) =>
          h("th", { scope: "col" }, t(key)),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      weeks.map((week) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, week.period),
          h("td", {}, week.due),
          h("td", {}, week.visited),
          h("td", {}, `${(Math.round(week.coverage * 1000) / 10).toFixed(1)}%`),
        ),
      ),
    ),
  );
}
