"""The client: one method per route of fresco's API, over the standard library's ``urllib``.

Every route the client calls is listed in ``ROUTES`` (method, OpenAPI path), and every
submission field it sends in ``SUBMIT_FIELDS``; the tests check both against the server's
``/openapi.json``. Errors are ``FrescoError``s carrying the server's stable code.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

from .models import Job, JobPage, LogPage, UploadGrant, UploadedObject

#: (method, path as /openapi.json writes it) of every route the client calls.
ROUTES: Tuple[Tuple[str, str], ...] = (
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("post", "/v1/jobs/{id}/cancel"),
    ("post", "/v1/jobs/{id}/retry"),
    ("get", "/v1/jobs/{id}/logs"),
    ("get", "/v1/workers"),
    ("post", "/v1/uploads"),
    ("put", "/v1/objects/{key}"),
)

#: The fields of ``SubmitRequest`` that ``Client.submit`` names as parameters.
SUBMIT_FIELDS: Tuple[str, ...] = (
    "input", "output", "style", "model", "chunk_frames", "priority", "callback_url",
)

#: The header that makes a submission safe to retry: the same key returns the same job.
IDEMPOTENCY_KEY = "Idempotency-Key"
#: The header each response carries its request id in.
REQUEST_ID = "x-request-id"

JobRef = Union[str, Job]


class FrescoError(Exception):
    """An error answer: the HTTP status, the API's stable kebab-case ``code`` and its message.

    ``code`` is ``"unreachable"`` (status 0) when no answer came at all.
    """

    def __init__(self, status: int, code: str, message: str, request_id: Optional[str] = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


def _job_id(job: JobRef) -> str:
    return job.id if isinstance(job, Job) else job


class Client:
    """A client of one fresco server.

    ``base_url`` is the server's address (``http://host:8080``); ``token`` an API token (made
    with ``fresco tokens create``); ``timeout`` the seconds one request may take.
    """

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        #: The ``x-request-id`` of the last answer (the id the server's logs and, for a
        #: submission, the job's log name).
        self.last_request_id: Optional[str] = None

    # -- requests -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Optional[Dict[str, Any]] = None,
        query: Optional[Dict[str, Any]] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Tuple[int, Any]:
        url = self.base_url + path
        if query:
            pairs = {k: v for k, v in query.items() if v is not None}
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        all_headers = {"Accept": "application/json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        return self._send(urllib.request.Request(url, data=data, method=method, headers=all_headers))

    def _send(self, request: urllib.request.Request) -> Tuple[int, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                self.last_request_id = response.headers.get(REQUEST_ID)
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            error = _error_from(e)
            self.last_request_id = error.request_id
            raise error from None
        except urllib.error.URLError as e:
            raise FrescoError(0, "unreachable", f"{request.full_url}: {e.reason}") from None

    # -- jobs -----------------------------------------------------------------------------

    def submit(
        self,
        input: str,
        output: str,
        style: Optional[str] = None,
        model: Optional[str] = None,
        *,
        chunk_frames: Optional[int] = None,
        priority: Optional[int] = None,
        callback_url: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        temporal: Optional[bool] = None,
        **options: Any,
    ) -> Job:
        """Queues a job (``POST /v1/jobs``). With ``idempotency_key``, a retry of the same
        submission (after a timeout, say) returns the job the first one made. ``temporal=True``
        steadies a styled video against flicker (docs/temporal.md). ``options`` are further
        fields of the submission (``codec``, ``crf``, ``max_side``, ...)."""
        body: Dict[str, Any] = {"input": input, "output": output}
        named = {
            "style": style, "model": model, "chunk_frames": chunk_frames,
            "priority": priority, "callback_url": callback_url, "temporal": temporal,
        }
        body.update({k: v for k, v in named.items() if v is not None})
        body.update(options)
        headers = {IDEMPOTENCY_KEY: idempotency_key} if idempotency_key else None
        _, job = self._request("POST", "/v1/jobs", body=body, headers=headers)
        return Job.from_json(job)

    def get(self, job: JobRef) -> Job:
        """The job now (``GET /v1/jobs/{id}``); its tasks and errors are in ``raw``."""
        _, body = self._request("GET", f"/v1/jobs/{_quote(_job_id(job))}")
        return Job.from_json(body)

    def list(
        self, state: Optional[str] = None, limit: Optional[int] = None, before: Optional[int] = None
    ) -> JobPage:
        """One page of jobs, newest first (``GET /v1/jobs``)."""
        _, body = self._request(
            "GET", "/v1/jobs", query={"state": state, "limit": limit, "before": before}
        )
        return JobPage.from_json(body)

    def jobs(self, state: Optional[str] = None, page_size: int = 100) -> Iterator[Job]:
        """Every job, newest first, page after page."""
        before = None
        while True:
            page = self.list(state=state, limit=page_size, before=before)
            yield from page.jobs
            if page.next is None:
                return
            before = page.next

    def cancel(self, job: JobRef) -> Job:
        """Cancels a queued or running job (``POST /v1/jobs/{id}/cancel``)."""
        _, body = self._request("POST", f"/v1/jobs/{_quote(_job_id(job))}/cancel")
        return Job.from_json(body)

    def retry(self, job: JobRef) -> Job:
        """Queues a failed or canceled job again (``POST /v1/jobs/{id}/retry``)."""
        _, body = self._request("POST", f"/v1/jobs/{_quote(_job_id(job))}/retry")
        return Job.from_json(body)

    def logs(self, job: JobRef, after: Optional[int] = None, limit: Optional[int] = None) -> LogPage:
        """The job's log lines after ``after`` (``GET /v1/jobs/{id}/logs``)."""
        _, body = self._request(
            "GET", f"/v1/jobs/{_quote(_job_id(job))}/logs", query={"after": after, "limit": limit}
        )
        return LogPage.from_json(body)

    def workers(self) -> Any:
        """The workers the queue knows (``GET /v1/workers``), as the server's JSON."""
        return self._request("GET", "/v1/workers")[1]

    def wait(
        self,
        job: JobRef,
        progress: Optional[Callable[[Job], None]] = None,
        interval: float = 1.0,
        timeout: Optional[float] = None,
    ) -> Job:
        """Polls the job until it has ended and returns it; ``progress`` is called with each
        state seen (``job.progress`` is 0 to 1). Raises ``TimeoutError`` after ``timeout``
        seconds. A failed or canceled job is returned, not raised: look at ``job.state``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.get(job)
            if progress is not None:
                progress(current)
            if current.finished:
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"job {current.id} is still {current.state} after {timeout} s"
                )
            time.sleep(interval)

    # -- uploads --------------------------------------------------------------------------

    def upload_grant(self, name: str, expires_in: Optional[int] = None) -> UploadGrant:
        """A signed URL to ``PUT`` a file named ``name`` to (``POST /v1/uploads``)."""
        body: Dict[str, Any] = {"name": name}
        if expires_in is not None:
            body["expires_in"] = expires_in
        _, grant = self._request("POST", "/v1/uploads", body=body)
        return UploadGrant.from_json(grant)

    def upload(self, path: Union[str, os.PathLike], name: Optional[str] = None) -> str:
        """Uploads a local file through a signed URL and returns the name to submit as
        ``input``. The file is streamed, not read into memory."""
        path = os.fspath(path)
        grant = self.upload_grant(name or os.path.basename(path))
        return self.put_file(grant, path).input

    def put_file(self, grant: UploadGrant, path: Union[str, os.PathLike]) -> UploadedObject:
        """``PUT``s a file to a grant's URL (which carries its own signature: no token)."""
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            request = urllib.request.Request(
                grant.upload_url,
                data=f,
                method=grant.method or "PUT",
                headers={
                    "Content-Length": str(size),
                    "Content-Type": "application/octet-stream",
                    "Accept": "application/json",
                },
            )
            _, body = self._send(request)
        return UploadedObject.from_json(body)

    # -- the API's description ------------------------------------------------------------

    def openapi(self) -> Dict[str, Any]:
        """The server's OpenAPI document (``GET /openapi.json``)."""
        return self._request("GET", "/openapi.json")[1]


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _error_from(e: urllib.error.HTTPError) -> FrescoError:
    request_id = e.headers.get(REQUEST_ID) if e.headers else None
    raw = e.read() or b""
    try:
        error = json.loads(raw)["error"]
        return FrescoError(e.code, error["code"], error["message"], request_id)
    except (ValueError, KeyError, TypeError):
        text = raw.decode("utf-8", "replace")[:200]
        return FrescoError(e.code, "http-error", text or str(e.reason), request_id)
