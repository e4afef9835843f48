"""The three Label Studio REST calls the round trip needs, over plain HTTP (urllib).

Not the SDK: its pins clash with ours. A legacy API token (`Authorization: Token ...`, a server
started with `--enable-legacy-api-token`) in $LABEL_STUDIO_API_KEY authenticates.

    POST /api/projects/                          create a project from label_config.xml
    POST /api/projects/{id}/import               import tasks.json
    GET  /api/projects/{id}/export?exportType=JSON   the answers, with lead_time
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from harness.core.errors import HarnessError

TOKEN_VARIABLE = "LABEL_STUDIO_API_KEY"
URL_VARIABLE = "LABEL_STUDIO_URL"


class LabelStudioError(HarnessError):
    """The server could not be reached or refused a call."""


class LabelStudio:
    """A Label Studio server at `url` (e.g. http://127.0.0.1:8080)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0):
        self.url = url.rstrip("/")
        self.token = token or os.environ.get(TOKEN_VARIABLE)
        if not self.token:
            raise LabelStudioError(f"talking to {self.url} needs an API token in "
                                   f"${TOKEN_VARIABLE} (Label Studio: Account & Settings -> "
                                   "Legacy token; start the server with "
                                   "--enable-legacy-api-token)")
        self.timeout = timeout

    def call(self, method: str, path: str, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:300]
            hint = " (is the token right?)" if err.code in (401, 403) else ""
            raise LabelStudioError(f"Label Studio {method} {path}: HTTP {err.code}{hint}: "
                                   f"{detail}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise LabelStudioError(f"Label Studio at {self.url} cannot be reached ({reason}); "
                                   "is the server running?") from None
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            raise LabelStudioError(f"Label Studio {method} {path} answered with something "
                                   f"other than JSON: {text[:200]!r}") from None

    def create_project(self, title: str, label_config: str) -> int:
        return int(self.call("POST", "/api/projects/",
                             {"title": title, "label_config": label_config})["id"])

    def import_tasks(self, project: int, tasks: list) -> int:
        """How many tasks the server took."""
        found = self.call("POST", f"/api/projects/{project}/import", tasks) or {}
        return int(found.get("task_count", len(tasks)))

    def export(self, project: int) -> list:
        return self.call("GET", f"/api/projects/{project}/export?exportType=JSON")
