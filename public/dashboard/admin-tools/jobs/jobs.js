// The job table (filters, keyset pages) and one job's detail with retry, cancel and delete.

import { api } from "./api.js";
import { $, badge, empty, exact, h, pretty, replace, shortId, time, toast } from "./dom.js";

const PAGE_SIZE = 25;
const RETRYABLE = new Set(["failed", "cancelled", "pending"]);
const CANCELLABLE = new Set(["pending", "processing"]);

export class JobsPanel {
  constructor({ onError, onChange }) {
    this.onError = onError;
    this.onChange = onChange; // after an action: refresh the rest of the page
    this.filter = { status: "", taskType: "" };
    this.cursors = [null]; // cursors[i] opens page i; null is the newest page
    this.page = 0;
    this.nextCursor = null;
    this.loaded = false;
    this.openJobId = null;
    this.dialog = $("job-dialog");
    this.confirmDialog = $("confirm-dialog");

    $("filter-status").addEventListener("change", (e) => this.setFilter({ status: e.target.value }));
    $("filter-type").addEventListener("change", (e) => this.setFilter({ taskType: e.target.value }));
    $("page-first").addEventListener("click", () => this.goTo(0));
    $("page-prev").addEventListener("click", () => this.goTo(this.page - 1));
    $("page-next").addEventListener("click", () => {
      if (!this.nextCursor) return;
      this.cursors[this.page + 1] = this.nextCursor;
      this.goTo(this.page + 1);
    });
    this.dialog.querySelector("[data-close]").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      this.openJobId = null;
    });
    $("job-retry").addEventListener("click", () => this.act("retry"));
    $("job-cancel").addEventListener("click", () => this.act("cancel"));
    $("job-delete").addEventListener("click", () => this.confirmDelete());
  }

  setTaskTypes(types) {
    const select = $("filter-type");
    const current = select.value;
    replace(
      select,
      h("option", { value: "" }, "All task types"),
      types.map((t) => h("option", { value: t }, t)),
    );
    select.value = types.includes(current) ? current : "";
  }

  setFilter(change) {
    Object.assign(this.filter, change);
    $("filter-status").value = this.filter.status;
    $("filter-type").value = this.filter.taskType;
    this.cursors = [null];
    this.page = 0;
    return this.load();
  }

  goTo(page) {
    this.page = Math.max(0, page);
    return this.load();
  }

  async load() {
    const table = $("jobs-table");
    if (!this.loaded) replace(table, h("p", { class: "empty" }, "Loading jobs…"));
    const query = { limit: String(PAGE_SIZE) };
    if (this.filter.status) query.status = this.filter.status;
    if (this.filter.taskType) query.taskType = this.filter.taskType;
    const cursor = this.cursors[this.page];
    if (cursor) query.cursor = cursor;
    let data;
    try {
      data = await api("/api/admin/job-queue/jobs", { query });
    } catch (error) {
      replace(table, h("p", { class: "error-text" }, `Jobs could not be loaded: ${error.message}`));
      this.onError(error);
      return;
    }
    this.loaded = true;
    this.nextCursor = data.nextCursor;
    this.render(data.jobs);
  }

  render(jobs) {
    const table = $("jobs-table");
    const filtered = this.filter.status || this.filter.taskType;
    if (!jobs.length) {
      replace(table, empty(filtered ? "No jobs match these filters." : this.page ? "No older jobs." : "No jobs yet."));
    } else {
      replace(
        table,
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Job"),
              h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col" }, "Attempts"),
              h("th", { scope: "col", class: "hide-narrow" }, "Run at"),
              h("th", { scope: "col", class: "hide-narrow" }, "Created"),
              h("th", { scope: "col", class: "hide-narrow" }, "Last error"),
            ),
          ),
          h(
            "tbody",
            {},
            jobs.map((job) =>
              h(
                "tr",
                { dataset: { jobId: job.id } },
                h(
                  "td",
                  {},
                  h(
                    "button",
                    {
                      type: "button",
                      class: "link-button",
                      "aria-label": `Open job ${job.taskType} ${shortId(job.id)}`,
                      onclick: () => this.open(job.id),
                    },
                    job.taskType,
                  ),
                  h("div", { class: "muted small mono" }, shortId(job.id)),
                ),
                h("td", {}, badge(job.status)),
                h("td", { class: "num" }, `${job.attempts} / ${job.maxAttempts}`),
                h("td", { class: "hide-narrow" }, time(job.runAt)),
                h("td", { class: "hide-narrow" }, time(job.createdAt)),
                h("td", { class: "error-cell hide-narrow", title: job.lastError || "" }, job.lastError || ""),
              ),
            ),
          ),
        ),
      );
    }
    $("page-first").disabled = this.page === 0;
    $("page-prev").disabled = this.page === 0;
    $("page-next").disabled = !this.nextCursor;
    $("page-label").textContent = `Page ${this.page + 1}`;
  }

  async open(jobId) {
    this.openJobId = jobId;
    $("job-action-status").textContent = "";
    replace($("job-detail"), h("p", { class: "empty" }, "Loading the job…"));
    $("job-dialog-title").textContent = `Job ${shortId(jobId)}`;
    for (const id of ["job-retry", "job-cancel", "job-delete"]) $(id).disabled = true;
    if (!this.dialog.open) this.dialog.showModal();
    await this.refreshDetail();
  }

  async refreshDetail() {
    const jobId = this.openJobId;
    if (!jobId) return;
    let job;
    try {
      job = (await api("/api/admin/job-queue/jobs", { query: { id: jobId } })).job;
    } catch (error) {
      if (error.status === 404) {
        replace($("job-detail"), empty("This job no longer exists."));
        for (const id of ["job-retry", "job-cancel", "job-delete"]) $(id).disabled = true;
        return;
      }
      replace($("job-detail"), h("p", { class: "error-text" }, `The job could not be loaded: ${error.message}`));
      this.onError(error);
      return;
    }
    if (jobId !== this.openJobId) return;
    this.renderDetail(job);
  }

  renderDetail(job) {
    this.job = job;
    $("job-dialog-title").textContent = `${job.taskType} · ${shortId(job.id)}`;
    const fact = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
    replace(
      $("job-detail"),
      h(
        "dl",
        { class: "facts" },
        fact("Status", badge(job.status)),
        fact("Id", h("span", { class: "mono" }, job.id)),
        fact("Attempts", `${job.attempts} of ${job.maxAttempts}`),
        fact("Run at", exact(job.runAt)),
        fact("Created", exact(job.createdAt)),
        fact("Updated", exact(job.updatedAt)),
        fact("Completed", exact(job.completedAt)),
        fact("Locked at", exact(job.lockedAt)),
        fact("Lease expires", exact(job.leaseExpiresAt)),
        job.dedupeKey ? fact("Dedupe key", h("span", { class: "mono" }, job.dedupeKey)) : null,
      ),
      h("h3", {}, "Last error"),
      job.lastError ? h("pre", { class: "error-block", tabindex: 0, "aria-label": "Last error" }, job.lastError) : empty("None."),
      h("h3", {}, "Payload"),
      h("pre", { tabindex: 0, "aria-label": "Payload" }, pretty(job.payload)),
      h("h3", {}, "Output"),
      job.output === null || job.output === undefined ? empty("None yet.") : h("pre", { tabindex: 0, "aria-label": "Output" }, pretty(job.output)),
    );
    $("job-retry").disabled = !RETRYABLE.has(job.status);
    $("job-cancel").disabled = !CANCELLABLE.has(job.status);
    $("job-delete").disabled = job.status === "processing";
    $("job-delete").title = job.status === "processing" ? "A processing job cannot be deleted; cancel it first." : "";
  }

  async act(action) {
    const jobId = this.openJobId;
    if (!jobId) return;
    const status = $("job-action-status");
    status.textContent = action === "retry" ? "Retrying…" : action === "cancel" ? "Cancelling…" : "Deleting…";
    try {
      const result = await api("/api/admin/job-queue/actions", { method: "POST", body: { action, jobId } });
      const done = { retry: "Retried", cancel: "Cancelled", delete: "Deleted" }[action];
      status.textContent = `${done}: the job is now ${result.status}.`;
      toast(`Job ${shortId(jobId)}: ${done.toLowerCase()}.`);
      if (action === "delete") this.dialog.close();
      else await this.refreshDetail();
    } catch (error) {
      status.textContent = error.status === 409 ? error.message : `Failed: ${error.message}`;
      this.onError(error, { quiet: error.status === 409 || error.status === 404 });
      await this.refreshDetail();
    }
    await Promise.all([this.load(), this.onChange()]);
  }

  confirmDelete() {
    const job = this.job;
    if (!job) return;
    $("confirm-text").textContent =
      `Job ${job.taskType} ${shortId(job.id)} (${job.status}) will be removed from the queue for good. ` +
      "This cannot be undone.";
    this.confirmDialog.returnValue = "";
    this.confirmDialog.addEventListener(
      "close",
      () => {
        if (this.confirmDialog.returnValue === "confirm") this.act("delete");
      },
      { once: true },
    );
    this.confirmDialog.showModal();
  }
}
