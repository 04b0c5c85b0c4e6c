// Evaluations: datasets (upload, browse), runs (start, live progress, summary, per-example results) and
// the comparison of two runs on one dataset (summary deltas, regressions first). API: docs/evaluation.md.
import { api, getJson, postJson } from "../api.js";
import { add, clear, errorBox, formatMs, formatTime, h, pretty } from "../dom.js";

const REFRESH_MS = 1500;
const DEFAULT_EVALUATORS = '["exact_match"]';

const score = (value) => (value === null || value === undefined ? "–" : value.toFixed(3));
const signed = (value) => (value === null || value === undefined ? "–" : `${value > 0 ? "+" : ""}${value.toFixed(3)}`);
const seconds = (iso) => (iso ? Date.parse(iso) / 1000 : null);
const short = (value, length = 80) => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > length ? `${text.slice(0, length)}…` : text;
};

async function failed(response) {
  return new Error(`${response.status}: ${await response.text()}`);
}

export async function render(root, params) {
  if (params[0] === "compare") return compare(root, params[1], params[2]);
  if (params[0]) return run(root, params[0]);
  return overview(root);
}

async function overview(root) {
  add(root, h("h1", {}, "Evaluations"));
  const message = h("div", { role: "status", "aria-live": "polite" });
  const datasets = h("div", { id: "datasets" });
  const runs = h("div", { id: "runs" });
  const datasetSelect = h("select", { id: "run-dataset", required: true });
  const skillSelect = h("select", { id: "run-skill", required: true });

  const fileInput = h("input", { id: "dataset-file", type: "file", accept: ".jsonl,.ndjson,.csv,.json", required: true });
  const nameInput = h("input", { id: "dataset-name", type: "text", placeholder: "questions", required: true });
  const upload = h("form", { class: "toolbar", "aria-label": "Upload a dataset", onsubmit: async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    const csv = file.name.toLowerCase().endsWith(".csv");
    const response = await api(`/v1/datasets?name=${encodeURIComponent(nameInput.value.trim() || file.name)}`, {
      method: "POST", headers: { "Content-Type": csv ? "text/csv" : "application/x-ndjson" }, body: await file.text() });
    clear(message);
    if (!response.ok) { message.append(errorBox(await failed(response))); return; }
    const created = await response.json();
    message.append(h("p", {}, `Dataset “${created.name}” stored with ${created.examples} examples.`));
    await loadDatasets();
  } },
    h("label", { for: "dataset-name" }, "Name"), nameInput,
    h("label", { for: "dataset-file" }, "File (JSON lines or CSV)"), fileInput,
    h("button", { type: "submit", class: "primary" }, "Upload"));

  const evaluators = h("textarea", { id: "run-evaluators", rows: 3, class: "json", spellcheck: false }, DEFAULT_EVALUATORS);
  const concurrency = h("input", { id: "run-concurrency", type: "number", min: 1, value: 4 });
  const start = h("form", { class: "playground", "aria-label": "Start an evaluation", onsubmit: async (event) => {
    event.preventDefault();
    let parsed;
    try { parsed = JSON.parse(evaluators.value); } catch (error) {
      clear(message).append(errorBox(new Error(`Evaluators are not valid JSON: ${error.message}`))); return;
    }
    const [namespace, ...rest] = skillSelect.value.split("/");
    const response = await postJson("/v1/evaluations", {
      namespace, skill: rest.join("/"), dataset: datasetSelect.value, evaluators: parsed, concurrency: Number(concurrency.value) });
    if (!response.ok) { clear(message).append(errorBox(await failed(response))); return; }
    location.hash = `#/evaluations/${(await response.json()).id}`;
  } },
    h("h2", {}, "Start an evaluation"),
    h("div", { class: "field" }, h("label", { for: "run-skill" }, "Skill"), skillSelect),
    h("div", { class: "field" }, h("label", { for: "run-dataset" }, "Dataset"), datasetSelect),
    h("div", { class: "field" }, h("label", { for: "run-evaluators" }, "Evaluators (JSON list)"), evaluators,
      h("span", { class: "help" }, 'Types: exact_match, json_subset, regex, numeric, json_schema, llm_judge — e.g. [{"type": "exact_match", "field": "answer"}]')),
    h("div", { class: "field" }, h("label", { for: "run-concurrency" }, "Concurrency"), concurrency),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "run-start" }, "Evaluate")));

  add(root, message, h("h2", {}, "Datasets"), upload, datasets, start, h("h2", {}, "Runs"), runs);

  async function loadDatasets() {
    try {
      const list = await getJson("/v1/datasets");
      clear(datasetSelect).append(...list.map((d) => h("option", { value: d.id }, `${d.name} (${d.examples})`)));
      clear(datasets).append(list.length
        ? h("table", {},
          h("thead", {}, h("tr", {}, ["Name", "Examples", "Created", "Id"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, list.map((d) => h("tr", {},
            h("td", {}, d.name), h("td", { class: "num" }, d.examples), h("td", {}, formatTime(seconds(d.created_at))),
            h("td", {}, h("code", {}, d.id))))))
        : h("p", { class: "muted" }, "No datasets yet: upload JSON lines with input, expected and metadata per line."));
    } catch (error) { clear(datasets).append(errorBox(error)); }
  }

  async function loadSkills() {
    try {
      const skills = await getJson("/v1/skills");
      clear(skillSelect).append(...skills.map((path) => h("option", { value: path }, path)));
    } catch (error) { clear(message).append(errorBox(error)); }
  }

  const chosen = new Set();
  async function loadRuns() {
    try {
      const list = await getJson("/v1/evaluations");
      const compareButton = h("button", { type: "button", id: "compare", disabled: chosen.size !== 2, onclick: () => {
        const [a, b] = [...chosen];
        location.hash = `#/evaluations/compare/${a}/${b}`;
      } }, "Compare the two selected runs");
      clear(runs).append(list.length
        ? h("div", {},
          h("table", {},
            h("thead", {}, h("tr", {}, ["", "Skill", "Status", "Progress", "Id"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, list.map((r) => h("tr", {},
              h("td", {}, h("input", { type: "checkbox", "aria-label": `select run ${r.id}`, checked: chosen.has(r.id),
                onchange: (event) => { if (event.target.checked) chosen.add(r.id); else chosen.delete(r.id); loadRuns(); } })),
              h("td", {}, `${r.namespace}/${r.skill}`),
              h("td", {}, h("span", { class: `badge status ${r.status === "done" ? "ok" : r.status === "running" ? "" : "runtime_error"}` }, r.status)),
              h("td", {}, h("progress", { max: r.progress.total, value: r.progress.done }), ` ${r.progress.done}/${r.progress.total}`),
              h("td", {}, h("a", { href: `#/evaluations/${r.id}` }, r.id)))))),
          h("p", { class: "muted" }, "Select a baseline first, then the candidate. "), compareButton)
        : h("p", { class: "muted" }, "No evaluations yet."));
    } catch (error) { clear(runs).append(errorBox(error)); }
  }

  await Promise.all([loadDatasets(), loadSkills(), loadRuns()]);
  const timer = setInterval(loadRuns, REFRESH_MS * 2);
  return () => clearInterval(timer);
}

function summaryTable(data) {
  return h("table", { class: "summary" },
    h("thead", {}, h("tr", {}, ["Evaluator", "Mean score", "Pass rate", "Scored"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, Object.entries(data.summary).map(([name, s]) => h("tr", {},
      h("td", {}, name), h("td", { class: "num" }, score(s.mean_score)), h("td", { class: "num" }, score(s.pass_rate)),
      h("td", { class: "num" }, s.scored)))));
}

async function run(root, id) {
  const head = h("div", { id: "run" });
  const results = h("div", { id: "results" });
  add(root, h("p", {}, h("a", { href: "#/evaluations" }, "← Evaluations")), h("h1", {}, "Evaluation"), head, h("h2", {}, "Results"), results);
  let timer = null;
  async function load() {
    try {
      const data = await getJson(`/v1/evaluations/${encodeURIComponent(id)}`);
      const cancel = data.status === "running"
        ? h("button", { type: "button", onclick: async () => { await api(`/v1/evaluations/${encodeURIComponent(id)}`, { method: "DELETE" }); load(); } }, "Cancel")
        : null;
      clear(head).append(
        h("dl", { class: "stats" },
          h("div", { class: "stat" }, h("dt", {}, "Skill"), h("dd", {}, `${data.namespace}/${data.skill}`)),
          h("div", { class: "stat" }, h("dt", {}, "Status"), h("dd", { id: "run-status" }, data.status)),
          h("div", { class: "stat" }, h("dt", {}, "Progress"), h("dd", { id: "run-progress" }, `${data.progress.done}/${data.progress.total}`)),
          h("div", { class: "stat" }, h("dt", {}, "Errors"), h("dd", {}, data.errors)),
          h("div", { class: "stat" }, h("dt", {}, "Latency p50 / p95"), h("dd", {}, `${formatMs(data.latency_ms.p50)} / ${formatMs(data.latency_ms.p95)}`)),
          h("div", { class: "stat" }, h("dt", {}, "Tokens (skill / judge)"), h("dd", {}, `${data.tokens.total ?? 0} / ${data.judge_tokens.total ?? 0}`)),
          h("div", { class: "stat" }, h("dt", {}, "Digest"), h("dd", {}, h("code", {}, data.digest || "–")))),
        h("progress", { max: data.progress.total, value: data.progress.done, "aria-label": "progress" }),
        data.reason ? h("p", { class: "error" }, data.reason) : null,
        cancel,
        h("h2", {}, "Summary"), summaryTable(data));
      const page = await getJson(`/v1/evaluations/${encodeURIComponent(id)}/results?limit=1000`);
      clear(results).append(
        h("p", {}, h("a", { href: `/v1/evaluations/${encodeURIComponent(id)}/results?format=csv` }, "Export CSV"), " · ",
          h("a", { href: `/v1/evaluations/${encodeURIComponent(id)}/results?format=jsonl` }, "Export JSON lines")),
        h("table", {},
          h("thead", {}, h("tr", {}, ["#", "Input", "Expected", "Output or error", "Scores", "Latency", "Trace"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, page.items.map((r) => h("tr", { class: r.error ? "status-error" : "" },
            h("td", { class: "num" }, r.index),
            h("td", {}, h("code", {}, short(r.input))),
            h("td", {}, "expected" in r ? h("code", {}, short(r.expected)) : "–"),
            h("td", {}, r.error
              // a skill error's last line names the exception; the whole text is the tooltip
              ? h("span", { class: "error-text", title: r.error }, `${r.status}: ${short(r.error.trim().split("\n").pop(), 160)}`)
              : h("code", {}, short(r.output, 160))),
            h("td", {}, r.scores.map((s) => h("span", { class: "chip", title: s.reason }, `${s.evaluator} ${score(s.score)}${s.passed ? " ✓" : " ✗"}`))),
            h("td", { class: "num" }, formatMs(r.latency_ms)),
            h("td", {}, r.trace_id ? h("a", { href: `#/executions/${r.trace_id}` }, "trace") : "–"))))));
      if (data.status !== "running" && timer) { clearInterval(timer); timer = null; }
    } catch (error) {
      clear(head).append(errorBox(error));
    }
  }
  await load();
  timer = setInterval(load, REFRESH_MS);
  return () => timer && clearInterval(timer);
}

async function compare(root, a, b) {
  add(root, h("p", {}, h("a", { href: "#/evaluations" }, "← Evaluations")), h("h1", {}, "Comparison"));
  const body = h("div", { id: "comparison" });
  add(root, body);
  try {
    const data = await getJson(`/v1/evaluations/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    const changes = (title, rows) => [
      h("h2", {}, `${title} (${rows.length})`),
      rows.length ? h("table", { class: title.toLowerCase() },
        h("thead", {}, h("tr", {}, ["#", "Input", "Score a", "Score b", "Change"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows.map((r) => h("tr", {},
          h("td", { class: "num" }, r.index), h("td", {}, h("code", {}, short(r.input))),
          h("td", { class: "num" }, score(r.a.score)), h("td", { class: "num" }, score(r.b.score)),
          h("td", { class: "num" }, signed(r.delta))))))
        : h("p", { class: "muted" }, "none")];
    add(body,
      h("p", {}, `Baseline ${data.a.namespace}/${data.a.skill} `, h("code", {}, data.a.digest || "–"),
        " against candidate ", h("code", {}, data.b.digest || "–")),
      h("table", {},
        h("thead", {}, h("tr", {}, ["Evaluator", "Mean a", "Mean b", "Δ mean", "Δ pass rate"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, Object.entries(data.summary).map(([name, d]) => h("tr", {},
          h("td", {}, name), h("td", { class: "num" }, score(data.a.summary[name].mean_score)),
          h("td", { class: "num" }, score(data.b.summary[name].mean_score)),
          h("td", { class: "num" }, signed(d.mean_score)), h("td", { class: "num" }, signed(d.pass_rate)))))),
      h("p", { class: "muted" }, `Errors ${data.errors >= 0 ? "+" : ""}${data.errors}, latency p50 ${signed(data.latency_ms.p50)} ms, p95 ${signed(data.latency_ms.p95)} ms`),
      ...changes("Regressions", data.regressions),
      ...changes("Improvements", data.improvements),
      h("details", {}, h("summary", {}, "Raw comparison"), h("pre", { class: "code" }, pretty(data))));
  } catch (error) {
    add(body, errorBox(error));
  }
}
