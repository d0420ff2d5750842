/**
 * The 12-week trend, drawn by the vendored Chart.js (window.Chart, a classic script loaded
 * before the modules). Canvas only, animation off: nothing needs eval or inline styles.
 *
 * @module admin/trend
 */

import { t } from "./i18n.js";

let chart = null;

/** Draw (or redraw) `weeks` — [{period, due, visited, coverage}] oldest first — on `canvas`. */
export function drawTrend(canvas, weeks) {
  const Chart = window.Chart;
  if (!Chart) throw new Error("Chart.js did not load");
  const labels = weeks.map((week) => week.period.replace(/^\d{4}-/, ""));
  const values = weeks.map((week) => Math.round(week.coverage * 1000) / 10);
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
