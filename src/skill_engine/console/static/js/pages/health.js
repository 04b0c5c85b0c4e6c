// Health: version, uptime, in-flight and queued invocations, cache usage, executions by outcome and the
// namespaces' last update and errors (the engine's Prometheus registry, the numbers /metrics shows).
import { getJson } from "../api.js";
import { add, clear, errorBox, formatBytes, formatTime, h } from "../dom.js";

const REFRESH_MS = 5000;

function uptime(seconds) {
  const d = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return `${d ? `${d} d ` : ""}${hh ? `${hh} h ` : ""}${m ? `${m} min ` : ""}${s} s`;
}

const stat = (name, value) => h("div", { class: "stat" }, h("dt", {}, name), h("dd", {}, value));

export async function render(root) {
  add(root, h("h1", {}, "Health"));
  const body = h("div", { id: "health" });
  add(root, body);
  async function load() {
    try {
      const d = await getJson("/v1/console/health");
      const executions = Object.entries(d.executions);
      add(clear(body), 
        h("dl", { class: "stats" },
          stat("Version", d.version),
          stat("Uptime", uptime(d.uptime_s)),
          stat("In flight", `${d.in_flight ?? "–"} of ${d.max_concurrent_skills}`),
          stat("Queued", d.queued ?? "–"),
          stat("Cached skills", d.cache.items ?? "–"),
          stat("Cache", `${formatBytes(d.cache.bytes)} of ${formatBytes(d.cache.capacity_bytes)}`),
          stat("Compiling", d.cache.compiling.length ? d.cache.compiling.join(", ") : "none"),
          stat("HTTP requests", d.http_requests),
          stat("Executions", executions.length ? executions.map(([k, v]) => `${k} ${v}`).join(", ") : "none"),
          stat("Tokens", Object.entries(d.tokens).map(([k, v]) => `${k} ${v}`).join(", ") || "none"),
          stat("Traces", d.tracing.exporting ? "exported (OTLP)" : "kept in memory only")),
        h("h2", {}, "Namespaces"),
        h("table", {},
          h("thead", {}, h("tr", {}, ["Namespace", "Skills", "Last update", "Error"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, d.namespaces.map((n) =>
            h("tr", {},
              h("td", {}, n.name),
              h("td", { class: "num" }, n.skills),
              h("td", {}, formatTime(n.updated_at)),
              h("td", { class: n.error || Object.keys(n.refused || {}).length ? "error-text" : "muted" },
                [n.error, ...Object.values(n.refused || {})].filter(Boolean).join("; ") || "none"))))),
        h("p", { class: "muted" }, "Prometheus metrics are served on the metrics address (METRICS_ADDRESS), path /metrics."),
      );
    } catch (error) {
      add(clear(body), errorBox(error));
    }
  }
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
