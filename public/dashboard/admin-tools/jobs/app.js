// The job queue admin page: sign-in, health, controls, quick actions, create job, schedules, jobs.

import { api, clearToken, getToken, setToken, signInWithPassword, takeTokenFromUrl } from "./api.js";
import { $, badge, duration, empty, h, plural, pretty, replace, shortId, time, toast } from "./dom.js";
import { JobsPanel } from "./jobs.js";

const STATUSES = ["pending", "processing", "succeeded", "failed", "cancelled"];
const REFRESH_SECONDS = 10;
const POLL_MS = 1500;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

const state = {
  health: null,
  signedIn: false,
  refreshing: false,
  timer: null,
  schedulesAvailable: true,
  config: null,
};

const jobs = new JobsPanel({ onError: handleError, onChange: () => refreshHealth() });

// -- errors and sign-in -------------------------------------------------------------

function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message;
  banner.hidden = !message;
}

function handleError(error, { quiet = false } = {}) {
  if (error.status === 401) {
    showSignIn("Your session is missing, expired or not valid. Sign in again.");
  } else if (error.status === 403) {
    showSignIn("This account is not an admin. Sign in with an admin account.");
  } else if (error.databaseUnavailable) {
    showBanner("Database unavailable: the queue cannot be read right now. The page retries on its own.");
  } else if (error.status === 0 || error.status >= 500) {
    showBanner(`The server had a problem: ${error.message}`);
  } else if (!quiet) {
    toast(error.message);
  }
}

async function showSignIn(reason) {
  state.signedIn = false;
  clearToken();
  stopRefresh();
  $("dashboard").hidden = true;
  $("loading").hidden = true;
  $("topbar-actions").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-reason").textContent = reason || "Sign in with an admin account.";
  setPill("Signed out", "pill-unknown");
  showBanner("");
  if (!state.config) {
    try {
      state.config = await api("/api/admin/config");
    } catch {
      state.config = {};
    }
  }
  const usable = Boolean(state.config.supabaseUrl && state.config.supabaseAnonKey);
  for (const el of $("password-form").elements) el.disabled = !usable;
  $("password-note").textContent = usable
    ? ""
    : "Email sign-in needs SUPABASE_URL and SUPABASE_ANON_KEY on the server; use an access token instead.";
  if (!usable) $("sign-in").querySelector("details").open = true;
}

async function signedIn() {
  $("sign-in").hidden = true;
  $("sign-in-error").textContent = "";
  $("loading").hidden = false;
  await start();
}

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    await signInWithPassword(state.config, $("email").value, $("password").value);
    $("password").value = "";
    await signedIn();
  } catch (error) {
    $("sign-in-error").textContent = error.message;
  }
});

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setToken($("token").value);
  $("token").value = "";
  await signedIn();
});

$("sign-out").addEventListener("click", () => showSignIn("Signed out."));

// -- health, tiles, controls ------------------------------------------------------

function setPill(text, kind) {
  const pill = $("health-pill");
  pill.textContent = text;
  pill.className = `pill ${kind}`;
}

function buildTiles() {
  replace(
    $("tiles"),
    STATUSES.map((status) =>
      h(
        "button",
        {
          type: "button",
          class: "tile",
          dataset: { status },
          "aria-pressed": "false",
          onclick: () => {
            const next = jobs.filter.status === status ? "" : status;
            jobs.setFilter({ status: next });
            updateTilePressed();
            if (next) $("jobs").scrollIntoView({ behavior: "smooth", block: "start" });
          },
        },
        h("span", { class: "tile-count", dataset: { count: status } }, "–"),
        h("span", { class: "tile-label" }, status[0].toUpperCase() + status.slice(1)),
      ),
    ),
  );
}

function updateTilePressed() {
  for (const tile of $("tiles").querySelectorAll(".tile")) {
    tile.setAttribute("aria-pressed", String(tile.dataset.status === jobs.filter.status));
  }
}

$("filter-status").addEventListener("change", updateTilePressed);

async function refreshHealth() {
  let report;
  try {
    report = await api("/api/admin/job-queue/health", { allowStatus: [503] });
  } catch (error) {
    handleError(error);
    return false;
  }
  if (!report || report.healthy === undefined) {
    handleError({ status: 503, databaseUnavailable: report?.error === "database_unavailable", message: report?.message });
    return false;
  }
  showBanner("");
  state.health = report;
  renderHealth(report);
  return true;
}

function renderHealth(r) {
  const paused = !r.processingEnabled;
  if (!r.healthy) setPill(`Needs attention · ${plural(r.problems.length, "problem")}`, "pill-bad");
  else if (paused) setPill("Healthy · processing paused", "pill-warn");
  else setPill("Healthy", "pill-ok");

  for (const status of STATUSES) {
    const el = $("tiles").querySelector(`[data-count="${status}"]`);
    el.textContent = String(r.queueCounts[status] ?? 0);
    el.parentElement.setAttribute("aria-label", `${r.queueCounts[status] ?? 0} ${status} jobs: show them`);
  }

  replace(
    $("processing-state"),
    paused
      ? [badge("paused"), `Processing is paused${r.pausedReason ? `: ${r.pausedReason}` : "."}`]
      : [badge("running"), "Processing is on: the worker claims due jobs."],
  );
  const toggle = $("toggle-processing");
  toggle.textContent = paused ? "Resume processing" : "Pause processing";
  toggle.classList.toggle("btn-primary", paused);
  $("pause-reason").disabled = paused;
  $("pause-reason").closest(".field").hidden = paused;

  replace(
    $("problems"),
    r.problems.length
      ? r.problems.map((p) => h("li", {}, p))
      : h("li", { class: "ok" }, "No problems: the queue is healthy."),
  );
  const fact = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  replace(
    $("health-facts"),
    fact("Due now", String(r.duePending)),
    fact("Oldest due job waiting", duration(r.oldestPendingAgeSeconds)),
    fact("Failed in the last 24 h", String(r.failedLast24h)),
    fact("Last worker run", time(r.lastRunAt)),
    fact("Overdue after", duration(r.maxWaitSeconds)),
  );

  replace(
    $("stuck-list"),
    r.stuck.length
      ? h(
          "ul",
          { class: "compact-list" },
          r.stuck.map((j) =>
            h(
              "li",
              {},
              jobLink(j),
              h("span", {}, `attempt ${j.attempts}`),
              h("span", { class: "muted" }, "lease expired ", time(j.leaseExpiresAt)),
              j.lastError ? h("span", { class: "error-text" }, j.lastError.slice(0, 160)) : null,
            ),
          ),
        )
      : empty("None."),
  );
  replace(
    $("overdue-list"),
    r.overdue.length
      ? h(
          "ul",
          { class: "compact-list" },
          r.overdue.map((j) =>
            h("li", {}, jobLink(j), h("span", { class: "muted" }, `waiting ${duration(j.waitSeconds)}`)),
          ),
        )
      : empty("None."),
  );

  renderLastSync(r.lastSyncRun);
  renderRuns(r.recentRuns);
  if (!state.schedulesAvailable) renderSchedulesFromHealth(r.schedules);
}

function jobLink(job) {
  return h(
    "button",
    { type: "button", class: "link-button", onclick: () => jobs.open(job.id) },
    `${job.taskType} ${shortId(job.id)}`,
  );
}

function renderLastSync(run) {
  if (!run) {
    replace($("last-sync"), empty("No Game Platform sync has run yet."));
    return;
  }
  const fact = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  // counts: {"competitors": {"synced": 3, …}, "teams": {…}} (or flat numbers): one line per group, zeros left out.
  const line = (values) =>
    Object.entries(values)
      .filter(([, v]) => typeof v === "number" && v !== 0)
      .map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`)
      .join(" · ");
  const groups = Object.entries(run.counts || {});
  const flat = line(Object.fromEntries(groups.filter(([, v]) => typeof v === "number")));
  const counts = [
    flat ? fact("Counts", flat) : null,
    ...groups
      .filter(([, v]) => v && typeof v === "object")
      .map(([group, values]) => fact(group[0].toUpperCase() + group.slice(1), line(values) || "—")),
  ];
  replace(
    $("last-sync"),
    h(
      "dl",
      { class: "facts" },
      fact("Status", badge(run.status)),
      fact("Scope", run.coachId ? `coach ${shortId(run.coachId)}` : "all coaches"),
      fact("Started", time(run.startedAt)),
      fact("Finished", run.finishedAt ? time(run.finishedAt) : "still running"),
      fact("Invocations", String(run.invocations ?? "—")),
      counts,
      run.error ? fact("Error", h("span", { class: "error-text" }, run.error)) : null,
    ),
  );
}

function renderRuns(runs) {
  if (!runs.length) {
    replace($("recent-runs"), empty("The worker has not run yet."));
    return;
  }
  replace(
    $("recent-runs"),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Started", "Trigger", "Status", "Claimed", "Done", "Failed", "Took"].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h(
        "tbody",
        {},
        runs.map((run) =>
          h(
            "tr",
            {},
            h("td", {}, time(run.startedAt)),
            h("td", {}, run.triggerSource),
            h("td", {}, badge(run.status)),
            h("td", { class: "num" }, String(run.claimed)),
            h("td", { class: "num" }, String(run.succeeded)),
            h("td", { class: "num" }, String(run.failed)),
            h("td", { class: "num" }, run.durationMs === null ? "—" : `${(run.durationMs / 1000).toFixed(1)} s`),
          ),
        ),
      ),
    ),
  );
}

$("toggle-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const enable = !state.health?.processingEnabled;
  const body = { enabled: enable };
  const reason = $("pause-reason").value.trim();
  if (!enable && reason) body.reason = reason;
  try {
    await api("/api/admin/job-queue/toggle", { method: "POST", body });
    $("pause-reason").value = "";
    toast(enable ? "Processing resumed." : "Processing paused.");
  } catch (error) {
    handleError(error);
  }
  await refreshHealth();
  $("toggle-processing").focus();
});

$("run-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("run-worker");
  const out = $("run-report");
  button.disabled = true;
  replace(out, h("p", {}, "Running the worker…"));
  try {
    const limit = Number($("run-limit").value) || 5;
    const report = await api("/api/admin/jobs/run-worker", {
      method: "POST",
      body: { limit, force: $("run-force").checked },
    });
    renderRunReport(report);
  } catch (error) {
    replace(out, h("p", { class: "error-text" }, `The worker did not run: ${error.message}`));
    handleError(error, { quiet: true });
  } finally {
    button.disabled = false;
  }
  await refreshAll();
});

function renderRunReport(report) {
  const out = $("run-report");
  if (report.status === "paused") {
    replace(
      out,
      h(
        "p",
        {},
        h("strong", {}, "Paused: "),
        `nothing ran (${report.reason || "no reason given"}). Tick "Run even while paused" to run anyway.`,
      ),
    );
    return;
  }
  const summary =
    report.processed === 0
      ? "The worker ran: no job was due."
      : `The worker ran ${plural(report.processed, "job")}: ${report.succeeded} succeeded, ${report.failed} failed` +
        (report.released ? `, ${report.released} released for later.` : ".");
  replace(
    out,
    h("p", {}, h("strong", {}, summary)),
    report.results.length
      ? h(
          "ul",
          { class: "result-list" },
          report.results.map((r) =>
            h(
              "li",
              {},
              `${r.taskType} ${shortId(r.id)} → `,
              badge(r.status),
              r.lastError ? h("span", { class: "error-text" }, ` ${r.lastError.slice(0, 200)}`) : null,
            ),
          ),
        )
      : null,
  );
}

// -- quick actions: sync, sweep, full sync --------------------------------------------

function quickBody(withBatch) {
  const body = { dryRun: $("quick-dry-run").checked };
  const coach = $("quick-coach").value.trim();
  if (coach) body.coachId = coach;
  if (withBatch) body.batchSize = Number($("quick-batch").value) || 100;
  return body;
}

function quickLine(text, kind = "") {
  $("quick-status").append(h("p", { class: kind }, text));
}

async function enqueue(path, body, label) {
  const result = await api(path, { method: "POST", body });
  quickLine(
    `${label}: job ${shortId(result.jobId)} ${result.deduplicated ? "already queued (an equal job is pending or processing)" : "enqueued"}.`,
  );
  return result.jobId;
}

/** Follow a job (and its continuations) until it is finished; resolves to the last job. */
async function watchJob(jobId, label) {
  const line = h("p", { class: "muted" }, `${label}: waiting for job ${shortId(jobId)}…`);
  $("quick-status").append(line);
  let current = jobId;
  for (;;) {
    if (!state.signedIn) throw new Error("signed out");
    let job;
    try {
      job = (await api("/api/admin/job-queue/jobs", { query: { id: current } })).job;
    } catch (error) {
      if (error.status === 404) {
        line.textContent = `${label}: job ${shortId(current)} no longer exists.`;
        return null;
      }
      throw error;
    }
    const continuation = job.output?.continuationJobId;
    if (job.status === "succeeded" && continuation) {
      current = continuation;
      line.textContent = `${label}: continuing in job ${shortId(current)}…`;
    } else if (TERMINAL.has(job.status)) {
      const counts = job.output
        ? Object.entries(job.output)
            .filter(([k, v]) => typeof v === "number" && !["invocations", "runId"].includes(k) && !k.endsWith("Omitted"))
            .filter(([k, v]) => v !== 0 || k === "failed")
            .slice(0, 6)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")
        : "";
      line.className = job.status === "succeeded" ? "ok-text" : "error-text";
      line.textContent =
        `${label}: ${job.status}` +
        (job.output?.status && job.output.status !== "completed" ? ` (${job.output.status})` : "") +
        (counts ? ` — ${counts}` : "") +
        (job.lastError ? ` — ${job.lastError.slice(0, 200)}` : "") +
        ".";
      return job;
    } else {
      line.textContent = `${label}: job ${shortId(current)} is ${job.status}…`;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const QUICK = {
  async sync() {
    const id = await enqueue("/api/admin/jobs/trigger-sync", quickBody(false), "Incremental sync");
    await refreshAll();
    await watchJob(id, "Incremental sync");
  },
  async sweep() {
    const id = await enqueue("/api/admin/jobs/trigger-totals-sweep", quickBody(true), "Totals sweep");
    await refreshAll();
    await watchJob(id, "Totals sweep");
  },
  async full() {
    const syncBody = { ...quickBody(false), forceFullSync: true };
    const syncId = await enqueue("/api/admin/jobs/trigger-sync", syncBody, "Full sync, step 1 (sync)");
    await refreshAll();
    const sync = await watchJob(syncId, "Full sync, step 1 (sync)");
    if (!sync || sync.status !== "succeeded") {
      quickLine("Full sync stopped: the sync did not succeed, so the sweep was not started.", "error-text");
      return;
    }
    const sweepBody = { ...quickBody(true), forceAll: true };
    const sweepId = await enqueue("/api/admin/jobs/trigger-totals-sweep", sweepBody, "Full sync, step 2 (sweep)");
    await refreshAll();
    await watchJob(sweepId, "Full sync, step 2 (sweep)");
  },
};

for (const button of document.querySelectorAll("[data-quick]")) {
  button.addEventListener("click", async () => {
    const coach = $("quick-coach");
    if (!coach.checkValidity()) {
      coach.reportValidity();
      return;
    }
    replace($("quick-status"));
    button.disabled = true;
    try {
      await QUICK[button.dataset.quick]();
    } catch (error) {
      if (error.message !== "signed out") {
        quickLine(`Failed: ${error.message}`, "error-text");
        handleError(error, { quiet: true });
      }
    } finally {
      button.disabled = false;
      refreshAll();
    }
  });
}

// -- create job ------------------------------------------------------------------------

async function loadTaskTypes() {
  let data;
  try {
    data = await api("/api/admin/jobs/create");
  } catch (error) {
    handleError(error, { quiet: true });
    return;
  }
  state.taskTypes = data.taskTypes;
  const select = $("create-type");
  replace(
    select,
    data.taskTypes.map((t) => h("option", { value: t.taskType }, t.taskType)),
  );
  jobs.setTaskTypes(data.taskTypes.map((t) => t.taskType));
  fillPayload();
}

function fillPayload() {
  const type = state.taskTypes?.find((t) => t.taskType === $("create-type").value);
  $("create-payload").value = pretty(type?.defaultPayload ?? {});
}

$("create-type").addEventListener("change", fillPayload);

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("create-status");
  let payload;
  try {
    payload = JSON.parse($("create-payload").value || "{}");
  } catch (error) {
    replace(out, h("p", { class: "error-text" }, `The payload is not valid JSON: ${error.message}`));
    return;
  }
  const body = { taskType: $("create-type").value, payload, maxAttempts: Number($("create-attempts").value) || 5 };
  if ($("create-run-at").value) body.runAt = new Date($("create-run-at").value).toISOString();
  try {
    const result = await api("/api/admin/jobs/create", { method: "POST", body });
    replace(
      out,
      h(
        "p",
        { class: "ok-text" },
        `Created job ${shortId(result.jobId)}. `,
        h("button", { type: "button", class: "link-button", onclick: () => jobs.open(result.jobId) }, "Open it"),
      ),
    );
  } catch (error) {
    const details = error.body?.details || [];
    replace(
      out,
      h("p", { class: "error-text" }, error.message),
      details.length ? h("ul", { class: "result-list error-text" }, details.map((d) => h("li", {}, `${d.field}: ${d.message}`))) : null,
    );
    handleError(error, { quiet: true });
  }
  await refreshAll();
});

// -- schedules -------------------------------------------------------------------------

async function refreshSchedules() {
  let data;
  try {
    data = await api("/api/admin/job-queue/schedules");
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      state.schedulesAvailable = false;
      renderSchedulesFromHealth(state.health?.schedules || []);
      return;
    }
    replace($("schedules"), h("p", { class: "error-text" }, `Schedules could not be loaded: ${error.message}`));
    handleError(error, { quiet: true });
    return;
  }
  state.schedulesAvailable = true;
  // An auto-refresh must not throw away a cron the operator is typing.
  const editing = [...$("schedules").querySelectorAll("input")].some((i) => i.value !== i.defaultValue);
  if (!editing) renderSchedules(data.schedules || [], true);
}

function renderSchedulesFromHealth(schedules) {
  const note = h(
    "p",
    { class: "muted" },
    "Changing schedules is not available on this deployment yet (no /api/admin/job-queue/schedules).",
  );
  replace($("schedules"), note);
  if (schedules.length) $("schedules").append(schedulesTable(schedules, false));
}

function renderSchedules(schedules, editable) {
  replace($("schedules"), schedules.length ? schedulesTable(schedules, editable) : empty("No schedules."));
}

function schedulesTable(schedules, editable) {
  const cols = ["Name", "Task type", "Cron (UTC)", "Enabled", "Next run", "Last enqueued"];
  return h(
    "div",
    { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Schedules table" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        schedules.map((s) => {
          const cronId = `cron-${s.name}`;
          const cron = editable
            ? h(
                "form",
                {
                  class: "inline-form cron-form",
                  onsubmit: (e) => {
                    e.preventDefault();
                    const input = e.target.elements.cron;
                    saveSchedule({ name: s.name, cron: input.value.trim() }, input);
                  },
                },
                h("label", { for: cronId, class: "visually-hidden" }, `Cron for ${s.name}`),
                h("input", { id: cronId, name: "cron", value: s.cron, class: "mono cron-input", required: true }),
                h("button", { type: "submit", class: "btn btn-small", "aria-label": `Save cron for ${s.name}` }, "Save"),
              )
            : h("code", {}, s.cron);
          return h(
            "tr",
            {},
            h("td", {}, h("strong", {}, s.name)),
            h("td", {}, s.taskType),
            h("td", {}, cron),
            h(
              "td",
              {},
              h("span", { class: `badge badge-${s.enabled ? "succeeded" : "cancelled"}` }, s.enabled ? "on" : "off"),
              " ",
              editable
                ? h(
                    "button",
                    {
                      type: "button",
                      class: "btn btn-small btn-quiet",
                      "aria-label": `${s.enabled ? "Disable" : "Enable"} schedule ${s.name}`,
                      onclick: () => saveSchedule({ name: s.name, enabled: !s.enabled }),
                    },
                    s.enabled ? "Disable" : "Enable",
                  )
                : null,
            ),
            h("td", {}, s.enabled ? time(s.nextRunAt) : h("span", { class: "muted" }, "—")),
            h("td", {}, time(s.lastEnqueuedAt)),
          );
        }),
      ),
    ),
  );
}

async function saveSchedule(change, input) {
  try {
    await api("/api/admin/job-queue/schedules", { method: "POST", body: change });
    toast(
      change.cron !== undefined
        ? `Schedule ${change.name}: cron set to ${change.cron}.`
        : `Schedule ${change.name} ${change.enabled ? "enabled" : "disabled"}.`,
    );
    if (input) input.defaultValue = input.value; // saved: no longer an unsaved edit
  } catch (error) {
    const detail = error.body?.details?.[0]?.message;
    toast(detail ? `${error.message} ${detail}` : error.message);
    handleError(error, { quiet: true });
  }
  await Promise.all([refreshSchedules(), refreshHealth()]);
}

// -- refresh ---------------------------------------------------------------------------

async function refreshAll() {
  if (state.refreshing || !state.signedIn) return;
  state.refreshing = true;
  try {
    const ok = await refreshHealth();
    if (!ok) return;
    await Promise.all([jobs.load(), refreshSchedules(), jobs.refreshDetail()]);
    $("updated-at").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } finally {
    state.refreshing = false;
  }
}

function startRefresh() {
  stopRefresh();
  if (!$("auto-refresh").checked) return;
  state.timer = setInterval(() => {
    if (!document.hidden) refreshAll();
  }, REFRESH_SECONDS * 1000);
}

function stopRefresh() {
  clearInterval(state.timer);
  state.timer = null;
}

$("auto-refresh").addEventListener("change", startRefresh);
$("refresh").addEventListener("click", () => refreshAll());

async function start() {
  // The first call decides: 401 → sign in; anything else → the dashboard.
  state.signedIn = true;
  const ok = await refreshHealth();
  if (!state.signedIn) return;
  $("loading").hidden = true;
  $("dashboard").hidden = false;
  $("topbar-actions").hidden = false;
  $("sign-out").hidden = !getToken();
  if (!ok) return retryLater();
  await Promise.all([jobs.load(), loadTaskTypes(), refreshSchedules()]);
  $("updated-at").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  startRefresh();
}

function retryLater() {
  // The database is unavailable: try again on the refresh cycle until it answers.
  setTimeout(async () => {
    if (!state.signedIn) return;
    if (await refreshHealth()) {
      await Promise.all([jobs.load(), loadTaskTypes(), refreshSchedules()]);
      startRefresh();
    } else retryLater();
  }, REFRESH_SECONDS * 1000);
}

buildTiles();
takeTokenFromUrl();
start();
