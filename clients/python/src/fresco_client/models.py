"""The API's bodies as typed dataclasses.

Each class names the fields it reads in ``FIELDS`` and the OpenAPI schema they come from in
``SCHEMA``; the tests check both against the server's ``/openapi.json``, so a renamed field
fails there rather than in a user's program. Fields the server adds later are kept in ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

#: States after which a job changes no more.
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class Job:
    """A job: where it stands, its progress and where its output goes."""

    SCHEMA: ClassVar[str] = "JobView"
    FIELDS: ClassVar[tuple] = (
        "id", "seq", "state", "input", "output", "temporal", "progress", "frames_total", "frames_done",
        "chunks_total", "chunks_done", "attempts", "last_error", "enqueued_at_ms",
        "started_at_ms", "finished_at_ms",
    )

    id: str
    seq: int
    state: str
    input: str
    output: str
    #: Whether the job is steadied against flicker (``temporal=True`` at submission).
    temporal: bool
    progress: float
    frames_total: Optional[int]
    frames_done: int
    chunks_total: int
    chunks_done: int
    attempts: int
    last_error: Optional[str]
    enqueued_at_ms: int
    started_at_ms: Optional[int]
    finished_at_ms: Optional[int]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """Whether the job has ended (succeeded, failed or canceled)."""
        return self.state in TERMINAL_STATES

    @classmethod
    def from_json(cls, body: Dict[str, Any]) -> "Job":
        return cls(**{name: body.get(name) for name in cls.FIELDS}, raw=body)


@dataclass(frozen=True)
class JobPage:
    """One page of a listing, newest first; ``next`` is the ``before`` of the next page."""

    SCHEMA: ClassVar[str] = "JobPage"
    FIELDS: ClassVar[tuple] = ("jobs", "next")

    jobs: List[Job]
    next: Optional[int]

    @classmethod
    def from_json(cls, body: Dict[str, Any]) -> "JobPage":
        return cls(jobs=[Job.from_json(j) for j in body["jobs"]], next=body.get("next"))


@dataclass(frozen=True)
class LogLine:
    """One line of a job's log."""

    SCHEMA: ClassVar[str] = "LogLineView"
    FIELDS: ClassVar[tuple] = ("id", "at_ms", "worker", "message")

    id: int
    at_ms: int
    worker: Optional[str]
    message: str

    @classmethod
    def from_json(cls, body: Dict[str, Any]) -> "LogLine":
        return cls(**{name: body.get(name) for name in cls.FIELDS})


@dataclass(frozen=True)
class LogPage:
    """Lines, oldest first; pass ``next`` as ``after`` to read on."""

    SCHEMA: ClassVar[str] = "LogPage"
    FIELDS: ClassVar[tuple] = ("lines", "next")

    lines: List[LogLine]
    next: Optional[int]

    @classmethod
    def from_json(cls, body: Dict[str, Any]) -> "LogPage":
        return cls(lines=[LogLine.from_json(l) for l in body["lines"]], next=body.get("next"))


@dataclass(frozen=True)
class UploadGrant:
    """Where to ``PUT`` a file, and the name to submit it as."""

    SCHEMA: ClassVar[str] = "UploadGrant"
    FIELDS: ClassVar[tuple] = ("upload_url", "method", "input", "expires_at", "max_bytes")

    upload_url: str
    method: str
    input: str
    expires_at: int
    max_bytes: int

    @classmethod
    def from_json(cls, body: Dict[str, Any]) -> "UploadGrant":
        return cls(**{name: body.get(name) for name in cls.FIELDS})


@dataclass(frozen=True)
class UploadedObject:
    """What an upload stored: ``input`` is the name to give a job."""

    SCHEMA: ClassVar[str] = "UploadedObject"
    FIELDS: ClassVar[tuple] = ("input", "size", "etag")

    input: str
    size: int
    etag: Optional[str]

    @classmethod
    def from_json(cls, body: Dict[str, Any]) -> "UploadedObject":
        return cls(**{name: body.get(name) for name in cls.FIELDS})


#: Every body the client reads, for the check against ``/openapi.json``.
MODELS = (Job, JobPage, LogLine, LogPage, UploadGrant, UploadedObject)
