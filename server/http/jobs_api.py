"""The scheduled jobs on the dashboard (docs/jobs.md): their last runs, and a run on demand."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from server import jobs, service
from server.auth import current_caller, require_role
from server.http.errors import ApiError

jobs_api = Blueprint("jobs_api", __name__, url_prefix="/api/v1/admin/jobs")


@jobs_api.get("")
def list_jobs() -> Response:
    """Every job with its schedule, last run (status, message) and next run; supervisors too."""
    require_role(current_caller(), "admin", "supervisor")
    return jsonify({"jobs": jobs.job_statuses()})


@jobs_api.post("/<name>/run")
def run_job(name: str) -> Response:
    """Run a job now, in this request; 409 while it runs elsewhere. Jobs are server-wide, so
    only an admin of every county runs one (CONTRACT §3)."""
    caller = current_caller()
    require_role(caller, "admin")
    if not service.administration(caller).everything:
        raise ApiError("forbidden", "only an admin of every county may run a job")
    try:
        result = jobs.run_now(name, caller.user_id, caller.device_id)
    except jobs.UnknownJob as exc:
        raise ApiError("not_found", f"no job named {name!r}") from exc
    if result.status == "locked":
        raise ApiError("conflict", "the job is running now; try again when it has finished")
    status = next(item for item in jobs.job_statuses() if item["name"] == name)
    return jsonify({"result": {"status": result.status, "message": result.message}, "job": status})
