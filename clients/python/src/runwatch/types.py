"""Dataclasses and ``str`` enums for what the server sends.

Field names are the GraphQL names in snake_case (``etaSeconds`` → ``eta_seconds``). Times are
timezone-aware :class:`datetime.datetime` in UTC. Counts are items; ``rate`` is items per second;
``eta_seconds`` and ``expires_at`` durations are seconds.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Union

__all__ = [
    "JobKind", "JobStatus", "ProgressEventType", "TrainingStatus", "TrainingCommandKind",
    "TrainingCommandState", "LogLevel", "ActivityScope", "SampleType",
    "Resources", "JobState", "ProgressEvent", "TrainingProgress", "TrainingStatusChange",
    "SampleGenerated", "TrainingLog", "SystemStats", "ValidationResult", "TrainingEvent",
    "TrainingCommand", "ActiveJob", "ResourceTotals", "Budget", "ActivitySnapshot", "ActivityUpdate",
    "BillingUpdate", "ActivityHint", "ContextMismatch", "ActivityEvent", "MetricPoint", "parse_datetime",
]


class _StrEnum(str, enum.Enum):
    """A ``str`` enum that prints as its value (``f"{JobStatus.RUNNING}"`` is ``RUNNING``) on every Python."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class JobKind(_StrEnum):
    """What sort of work a job is."""
    BATCH = "BATCH"
    EVALUATION = "EVALUATION"
    TRAINING = "TRAINING"
    PIPELINE = "PIPELINE"


class JobStatus(_StrEnum):
    """QUEUED → RUNNING ⇄ PAUSED → COMPLETED | FAILED | CANCELLED (the last three are final)."""
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class ProgressEventType(_StrEnum):
    """Kinds of event on a job stream; COMPLETED, FAILED and CANCELLED are terminal."""
    SNAPSHOT = "SNAPSHOT"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    STAGE = "STAGE"
    ITEM_FAILED = "ITEM_FAILED"
    ITEM_RESULTS = "ITEM_RESULTS"
    LOG = "LOG"
    CHILD = "CHILD"
    STALLED = "STALLED"
    RECOVERED = "RECOVERED"
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class JobUpdateType(_StrEnum):
    """What a :class:`JobUpdate` of the live job list says: SNAPSHOT (a matching job as it is, first),
    CREATED, STATUS (``previous_status`` is the one it left) or PROGRESS (conflated per job)."""
    SNAPSHOT = "SNAPSHOT"
    CREATED = "CREATED"
    STATUS = "STATUS"
    PROGRESS = "PROGRESS"


class TrainingStatus(_StrEnum):
    """What a trainer says it is doing; STOPPED, ERROR and COMPLETED are final."""
    IDLE = "IDLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ERROR = "ERROR"
    COMPLETED = "COMPLETED"


class TrainingCommandKind(_StrEnum):
    """What a command asks the trainer to do."""
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    STOP = "STOP"
    SAMPLE = "SAMPLE"
    SAVE_CHECKPOINT = "SAVE_CHECKPOINT"


class JobCommandKind(_StrEnum):
    """What a command asks a job's worker to do; CUSTOM carries a ``name``. A training run's STOP is a
    CANCEL, and its SAMPLE and SAVE_CHECKPOINT are CUSTOM commands of that name."""
    CANCEL = "CANCEL"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    CUSTOM = "CUSTOM"


class TrainingCommandState(_StrEnum):
    """PENDING until answered (ACKNOWLEDGED / REJECTED) or expired (EXPIRED)."""
    PENDING = "PENDING"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class LogLevel(_StrEnum):
    """Levels of a TrainingLog line."""
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class ActivityScope(_StrEnum):
    """How wide an activity view is: your jobs, your environment's, or your institute's."""
    USER = "USER"
    ENVIRONMENT = "ENVIRONMENT"
    INSTITUTE = "INSTITUTE"


class SampleType(_StrEnum):
    """What a generated sample is."""
    IMAGE = "IMAGE"
    TEXT = "TEXT"
    AUDIO = "AUDIO"
    VIDEO = "VIDEO"
    OTHER = "OTHER"


def parse_datetime(value: Any) -> Optional[datetime]:
    """``2026-11-21T09:00:00.000Z`` → an aware UTC datetime; None stays None."""
    if not isinstance(value, str):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def format_datetime(value: Optional[datetime]) -> Optional[str]:
    """An aware or naive (taken as UTC) datetime → the server's ISO form."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _value(value: Any) -> str:
    """An enum member's value (``"COMPLETED"``), or the string as it is."""
    return str(getattr(value, "value", value))


def _enum(cls: Any, value: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        return value


@dataclass
class Resources:
    """What a job holds: containers (or processes), CPU cores, memory in GB, GPUs."""
    containers: int = 0
    cpu_cores: float = 0.0
    memory_gb: float = 0.0
    gpus: int = 0

    @classmethod
    def coerce(cls, value: Union["Resources", Mapping[str, Any]]) -> "Resources":
        """A Resources, or a dict with keys ``containers``, ``cpu_cores``, ``memory_gb``, ``gpus``.

        Raises:
            TypeError: neither.
        """
        if isinstance(value, Resources):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise TypeError(f"runwatch: unknown resources keys {sorted(unknown)}; expected {sorted(known)}")
            return cls(**value)
        raise TypeError("runwatch: resources must be a runwatch.Resources or a dict")

    @classmethod
    def from_graphql(cls, data: Optional[Mapping[str, Any]]) -> Optional["Resources"]:
        """From the GraphQL ``Resources`` object (camelCase)."""
        if not data:
            return None
        return cls(containers=data.get("containers", 0), cpu_cores=data.get("cpuCores", 0.0),
                   memory_gb=data.get("memoryGb", 0.0), gpus=data.get("gpus", 0))

    def to_graphql(self) -> Dict[str, Any]:
        """To ``ResourcesInput``."""
        return {"containers": int(self.containers), "cpuCores": float(self.cpu_cores),
                "memoryGb": float(self.memory_gb), "gpus": int(self.gpus)}


@dataclass
class JobState:
    """A job as the server last described it (GraphQL ``BatchJob``).

    ``total`` is None while unknown; ``percent`` is 0..100; ``rate`` is items per second over a
    sliding window; ``eta_seconds`` is seconds until done at ``rate`` (None when unknown).
    ``parent_id`` is the job's parent in a job group (None for a top-level job) and ``child_counts`` its
    children per status (None without children; a parent's numbers are its own plus its children's).
    ``tags`` are the tags given at creation. ``stalled`` is True while a RUNNING job has sent no report
    for ``heartbeat_seconds`` seconds (0: stall detection off); its next report clears it.
    ``success_rate`` is ok / (ok + failed) over its item results, 0..1 (None before the first).
    """
    id: str
    name: str = ""
    kind: Union[JobKind, str] = JobKind.BATCH
    status: Union[JobStatus, str] = JobStatus.QUEUED
    total: Optional[int] = None
    completed: int = 0
    failed: int = 0
    percent: Optional[float] = None
    rate: Optional[float] = None
    eta_seconds: Optional[float] = None
    stage: Optional[str] = None
    message: Optional[str] = None
    error_message: Optional[str] = None
    metadata: Any = None
    created_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    last_cursor: Optional[str] = None
    resources: Optional[Resources] = None
    parent_id: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    stalled: bool = False
    heartbeat_seconds: Optional[int] = None
    child_counts: Optional["ChildCounts"] = None
    success_rate: Optional[float] = None

    @property
    def finished(self) -> bool:
        """True when the status is COMPLETED, FAILED or CANCELLED."""
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    def progress_text(self) -> str:
        """The job's progress for people: ``40/40 100% 9.9 items/s``, then ``ETA 3m 05s`` while it runs
        and ``stage …`` when it has one (percent, rate and ETA left out while unknown; numbers rounded
        as the Node CLI rounds them)."""
        from .format import format_count, format_duration, format_percent, format_rate_number
        parts = [format_count(self.completed, self.total)]
        if self.percent is not None:
            parts.append(format_percent(self.percent))
        if self.rate is not None:
            parts.append(f"{format_rate_number(self.rate)} items/s")
        if self.eta_seconds is not None and not self.finished:
            parts.append(f"ETA {format_duration(self.eta_seconds)}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.stage:
            parts.append(f"stage {self.stage}")
        if self.stalled:
            parts.append("STALLED")
        return " ".join(parts)

    def __str__(self) -> str:
        """``name (id) STATUS 40/40 100% 9.9 items/s`` (see :meth:`progress_text`); ``repr()`` keeps every field."""
        return f"{self.name} ({self.id}) {_value(self.status)} {self.progress_text()}"

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "JobState":
        """From a GraphQL ``BatchJob`` object (any subset of its fields)."""
        return cls(**_job_kwargs(d))


def _job_kwargs(d: Mapping[str, Any]) -> Dict[str, Any]:
    return dict(
        id=d.get("id", ""), name=d.get("name", ""), kind=_enum(JobKind, d.get("kind", "BATCH")),
        status=_enum(JobStatus, d.get("status", "QUEUED")), total=d.get("total"),
        completed=d.get("completed", 0), failed=d.get("failed", 0), percent=d.get("percent"),
        rate=d.get("rate"), eta_seconds=d.get("etaSeconds"), stage=d.get("stage"), message=d.get("message"),
        error_message=d.get("errorMessage"), metadata=d.get("metadata"),
        created_at=parse_datetime(d.get("createdAt")), started_at=parse_datetime(d.get("startedAt")),
        finished_at=parse_datetime(d.get("finishedAt")), updated_at=parse_datetime(d.get("updatedAt")),
        last_cursor=d.get("lastCursor"), resources=Resources.from_graphql(d.get("resources")),
        parent_id=d.get("parentId"), tags=list(d.get("tags") or []), stalled=bool(d.get("stalled", False)),
        heartbeat_seconds=d.get("heartbeatSeconds"), child_counts=ChildCounts.from_graphql(d.get("childCounts")),
        success_rate=d.get("successRate"),
    )


@dataclass
class ChildCounts:
    """How many of a parent's children are in each status (GraphQL ``ChildCounts``)."""
    queued: int = 0
    running: int = 0
    paused: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        """All children."""
        return self.queued + self.running + self.paused + self.completed + self.failed + self.cancelled

    def __str__(self) -> str:
        """``3 children: 1 running, 2 completed`` (statuses with none left out)."""
        counts = [(n, getattr(self, n)) for n in ("queued", "running", "paused", "completed", "failed", "cancelled")]
        return f"{self.total} children: " + ", ".join(f"{v} {n}" for n, v in counts if v)

    @classmethod
    def from_graphql(cls, d: Optional[Mapping[str, Any]]) -> Optional["ChildCounts"]:
        """From GraphQL ``ChildCounts``; None stays None (a job without children)."""
        if d is None:
            return None
        return cls(**{n: int(d.get(n, 0)) for n in ("queued", "running", "paused", "completed", "failed", "cancelled")})


@dataclass
class ItemResult:
    """The result of one item of a job (``Job.report_items``): ``ok`` (counted in ``completed``) or not
    (counted in ``failed``, with ``error``), ``latency_seconds`` it took, its ``metrics`` by name, ``data``
    (free JSON), and ``seq``, its place among the job's results (1, 2, ...)."""
    item_id: str
    ok: bool
    seq: int = 0
    latency_seconds: Optional[float] = None
    metrics: Dict[str, float] = field(default_factory=dict)
    error: Optional[str] = None
    data: Any = None
    timestamp: Optional[datetime] = None

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "ItemResult":
        """From GraphQL ``ItemResult``."""
        return cls(item_id=d.get("itemId", ""), ok=bool(d.get("ok")), seq=d.get("seq", 0),
                   latency_seconds=d.get("latencySeconds"),
                   metrics={m["name"]: m["value"] for m in d.get("metrics") or []}, error=d.get("error"),
                   data=d.get("data"), timestamp=parse_datetime(d.get("timestamp")))


@dataclass
class LogLine:
    """A log line of a job (``Job.log``): ``dropped_before`` lines of the job were dropped by the server's
    rate limit just before it; ``source`` is where it came from (a logger name, ``stderr``)."""
    level: Union[LogLevel, str]
    message: str
    source: Optional[str] = None
    dropped_before: int = 0
    timestamp: Optional[datetime] = None

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "LogLine":
        """From GraphQL ``LogLine``."""
        return cls(level=_enum(LogLevel, d.get("level", "INFO")), message=d.get("message", ""), source=d.get("source"),
                   dropped_before=d.get("droppedBefore", 0), timestamp=parse_datetime(d.get("timestamp")))


@dataclass
class JobStep:
    """A step of a job (a pipeline's stage or tool): ``status`` PENDING, RUNNING, COMPLETED, FAILED
    (with ``error``) or CANCELLED; ``duration_seconds`` from start to finish (to now while RUNNING);
    ``completed``/``total`` units of the step as reported."""
    name: str
    status: str
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    duration_seconds: Optional[float] = None
    completed: Optional[int] = None
    total: Optional[int] = None
    error: Optional[str] = None

    @classmethod
    def from_graphql(cls, d: Optional[Mapping[str, Any]]) -> Optional["JobStep"]:
        """From GraphQL ``JobStep``; None stays None."""
        if d is None:
            return None
        return cls(name=d.get("name", ""), status=d.get("status", ""), started_at=parse_datetime(d.get("startedAt")),
                   finished_at=parse_datetime(d.get("finishedAt")), duration_seconds=d.get("durationSeconds"),
                   completed=d.get("completed"), total=d.get("total"), error=d.get("error"))


@dataclass
class ProgressEvent:
    """One event of a job's stream (``runProgress``), with the job's state right after it.

    ``cursor`` grows with every event; pass it as ``after`` to resume. The first event of a stream
    is a SNAPSHOT; the last is COMPLETED, FAILED or CANCELLED.
    """
    type: Union[ProgressEventType, str]
    cursor: str
    run_id: str
    timestamp: Optional[datetime]
    job: JobState
    message: Optional[str] = None
    #: ITEM_RESULTS (``watch(..., items=True)``): the batch of one report, in order; else empty.
    items: List[ItemResult] = field(default_factory=list)
    #: LOG (``watch(..., logs=True)``): the lines of one report that passed the rate limit; else empty.
    logs: List[LogLine] = field(default_factory=list)
    #: STAGE: the step that started or changed; else None.
    step: Optional[JobStep] = None
    #: CHILD: the child (of a job group) that was added or changed status; else None.
    child_id: Optional[str] = None

    @property
    def terminal(self) -> bool:
        """True when the job is finished after this event (the stream ends with it)."""
        return self.type in (ProgressEventType.COMPLETED, ProgressEventType.FAILED, ProgressEventType.CANCELLED) \
            or (self.type == ProgressEventType.SNAPSHOT and self.job.finished)

    def __str__(self) -> str:
        """The event for people: ``COMPLETED 40/40 100% 9.9 items/s`` (the type, then the job's
        :meth:`JobState.progress_text`); ``repr()`` keeps every field."""
        return f"{_value(self.type)} {self.job.progress_text()}"

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "ProgressEvent":
        """From a GraphQL ``ProgressEvent``."""
        return cls(type=_enum(ProgressEventType, d.get("type")), cursor=d.get("cursor", ""), run_id=d.get("runId", ""),
                   timestamp=parse_datetime(d.get("timestamp")), job=JobState.from_graphql(d.get("job") or {}),
                   message=d.get("message"), items=[ItemResult.from_graphql(i) for i in d.get("items") or []],
                   logs=[LogLine.from_graphql(line) for line in d.get("logs") or []],
                   step=JobStep.from_graphql(d.get("step")), child_id=d.get("childId"))


@dataclass
class JobUpdate:
    """One change of a job in the tenant's live job list (``Client.job_updates``): ``type`` (SNAPSHOT,
    CREATED, STATUS, PROGRESS), ``job`` right after it, ``previous_status`` (STATUS: the status it left),
    and ``cursor``, its position in the list (pass as ``after`` to resume)."""
    type: Union[JobUpdateType, str]
    cursor: str
    timestamp: Optional[datetime]
    job: JobState
    previous_status: Union[JobStatus, str, None] = None

    def __str__(self) -> str:
        """``STATUS RUNNING→COMPLETED shard 1 (j_…) COMPLETED 500/500 100%``."""
        move = ""
        if self.type == JobUpdateType.STATUS and self.previous_status is not None:
            move = f" {_value(self.previous_status)}→{_value(self.job.status)}"
        return f"{_value(self.type)}{move} {self.job}"

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "JobUpdate":
        """From GraphQL ``JobUpdate``."""
        previous = d.get("previousStatus")
        return cls(type=_enum(JobUpdateType, d.get("type")), cursor=d.get("cursor", ""),
                   timestamp=parse_datetime(d.get("timestamp")), job=JobState.from_graphql(d.get("job") or {}),
                   previous_status=_enum(JobStatus, previous) if previous else None)


@dataclass
class _TrainingBase:
    cursor: str
    run_id: str
    timestamp: Optional[datetime]
    snapshot: bool


@dataclass
class TrainingProgress(_TrainingBase):
    """Where the optimiser is: ``global_step`` of ``max_step``; ``loss``; ``learning_rate``; ``eta_seconds`` (s)."""
    global_step: int = 0
    step: Optional[int] = None
    epoch: Optional[int] = None
    epoch_step: Optional[int] = None
    max_step: Optional[int] = None
    max_epoch: Optional[int] = None
    loss: Optional[float] = None
    learning_rate: Optional[float] = None
    eta_seconds: Optional[float] = None


@dataclass
class TrainingStatusChange(_TrainingBase):
    """The trainer changed status (STOPPED, ERROR and COMPLETED are final)."""
    status: Union[TrainingStatus, str] = TrainingStatus.RUNNING
    message: Optional[str] = None
    error: Optional[str] = None


@dataclass
class SampleGenerated(_TrainingBase):
    """The trainer produced a sample (image, text, ...)."""
    sample_id: str = ""
    sample_type: Union[SampleType, str] = SampleType.IMAGE
    path: Optional[str] = None
    url: Optional[str] = None
    prompt: Optional[str] = None
    step: Optional[int] = None
    epoch: Optional[int] = None
    thumbnail: Optional[str] = None


@dataclass
class TrainingLog(_TrainingBase):
    """A log line of the trainer; ``dropped_before`` lines were dropped by rate limiting just before it."""
    level: Union[LogLevel, str] = LogLevel.INFO
    message: Optional[str] = None
    source: Optional[str] = None
    dropped_before: int = 0


@dataclass
class SystemStats(_TrainingBase):
    """Load of the trainer's machine: percentages 0..100, sizes in GB."""
    cpu_percent: Optional[float] = None
    ram_used_gb: Optional[float] = None
    ram_total_gb: Optional[float] = None
    gpu_utilization_percent: Optional[float] = None
    gpu_memory_used_gb: Optional[float] = None
    gpu_memory_total_gb: Optional[float] = None


@dataclass
class ValidationResult(_TrainingBase):
    """A validation pass: ``validation_loss`` and further ``metrics`` by name."""
    validation_loss: float = 0.0
    step: Optional[int] = None
    epoch: Optional[int] = None
    metrics: Dict[str, float] = field(default_factory=dict)


TrainingEvent = Union[TrainingProgress, TrainingStatusChange, SampleGenerated, TrainingLog, SystemStats, ValidationResult]


def training_event_from_graphql(d: Mapping[str, Any]) -> Optional[TrainingEvent]:
    """From a ``TrainingEvent`` union member (by ``__typename``); None for an unknown member."""
    base = dict(cursor=d.get("cursor", ""), run_id=d.get("runId", ""), timestamp=parse_datetime(d.get("timestamp")),
                snapshot=bool(d.get("snapshot", False)))
    kind = d.get("__typename")
    if kind == "TrainingProgress":
        return TrainingProgress(**base, global_step=d.get("globalStep", 0), step=d.get("step"), epoch=d.get("epoch"),
                                epoch_step=d.get("epochStep"), max_step=d.get("maxStep"), max_epoch=d.get("maxEpoch"),
                                loss=d.get("loss"), learning_rate=d.get("learningRate"), eta_seconds=d.get("etaSeconds"))
    if kind == "TrainingStatusChange":
        return TrainingStatusChange(**base, status=_enum(TrainingStatus, d.get("status")), message=d.get("message"),
                                    error=d.get("error"))
    if kind == "SampleGenerated":
        return SampleGenerated(**base, sample_id=d.get("sampleId", ""), sample_type=_enum(SampleType, d.get("sampleType")),
                               path=d.get("path"), url=d.get("url"), prompt=d.get("prompt"), step=d.get("step"),
                               epoch=d.get("epoch"), thumbnail=d.get("thumbnail"))
    if kind == "TrainingLog":
        return TrainingLog(**base, level=_enum(LogLevel, d.get("level")), message=d.get("message"),
                           source=d.get("source"), dropped_before=d.get("droppedBefore", 0))
    if kind == "SystemStats":
        return SystemStats(**base, cpu_percent=d.get("cpuPercent"), ram_used_gb=d.get("ramUsedGb"),
                           ram_total_gb=d.get("ramTotalGb"), gpu_utilization_percent=d.get("gpuUtilizationPercent"),
                           gpu_memory_used_gb=d.get("gpuMemoryUsedGb"), gpu_memory_total_gb=d.get("gpuMemoryTotalGb"))
    if kind == "ValidationResult":
        metrics = {m["name"]: m["value"] for m in d.get("metrics") or []}
        return ValidationResult(**base, validation_loss=d.get("validationLoss", 0.0), step=d.get("step"),
                                epoch=d.get("epoch"), metrics=metrics)
    return None


@dataclass
class TrainingCommand:
    """A command to a run's trainer. ``args`` is free-form JSON from the sender."""
    id: str
    command: Union[TrainingCommandKind, str]
    args: Any = None
    created_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    run_id: Optional[str] = None
    state: Union[TrainingCommandState, str, None] = None
    message: Optional[str] = None
    sender_id: Optional[str] = None

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "TrainingCommand":
        """From a GraphQL ``TrainingCommand``."""
        return cls(id=d.get("id", ""), command=_enum(TrainingCommandKind, d.get("command")), args=d.get("args"),
                   created_at=parse_datetime(d.get("createdAt")), expires_at=parse_datetime(d.get("expiresAt")),
                   run_id=d.get("runId"), state=_enum(TrainingCommandState, d.get("state")) if d.get("state") else None,
                   message=d.get("message"), sender_id=d.get("senderId"))


#: The states of a job command: the same life cycle as a training command's.
JobCommandState = TrainingCommandState


@dataclass
class JobCommand:
    """A command to a job's worker. ``name`` is set for CUSTOM commands; ``args`` is free-form JSON from
    the sender; ``state`` is as of when it was read (PENDING, ACKNOWLEDGED, REJECTED or EXPIRED)."""
    id: str
    command: Union[JobCommandKind, str]
    name: Optional[str] = None
    args: Any = None
    job_id: Optional[str] = None
    state: Union[TrainingCommandState, str, None] = None
    message: Optional[str] = None
    created_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    sender_id: Optional[str] = None

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "JobCommand":
        """From a GraphQL ``JobCommand``."""
        return cls(id=d.get("id", ""), command=_enum(JobCommandKind, d.get("command")), name=d.get("name"),
                   args=d.get("args"), job_id=d.get("jobId"),
                   state=_enum(TrainingCommandState, d.get("state")) if d.get("state") else None,
                   message=d.get("message"), created_at=parse_datetime(d.get("createdAt")),
                   expires_at=parse_datetime(d.get("expiresAt")), sender_id=d.get("senderId"))


@dataclass
class ActiveJob:
    """A RUNNING or PAUSED job and the resources it holds."""
    job: JobState
    resources: Resources


@dataclass
class ResourceTotals:
    """Sums over the active jobs of a scope: ``jobs`` active, containers, CPU cores, memory in GB, GPUs."""
    jobs: int = 0
    containers: int = 0
    cpu_cores: float = 0.0
    memory_gb: float = 0.0
    gpus: int = 0

    @classmethod
    def from_graphql(cls, d: Optional[Mapping[str, Any]]) -> "ResourceTotals":
        """From GraphQL ``ResourceTotals``."""
        d = d or {}
        return cls(jobs=d.get("jobs", 0), containers=d.get("containers", 0), cpu_cores=d.get("cpuCores", 0.0),
                   memory_gb=d.get("memoryGb", 0.0), gpus=d.get("gpus", 0))


@dataclass
class Budget:
    """A tenant's budget in ``currency``: total (None until set), used, remaining (negative when over)."""
    budget_total: Optional[float] = None
    budget_used: float = 0.0
    budget_remaining: Optional[float] = None
    currency: Optional[str] = None
    percent_used: Optional[float] = None


def _budget(d: Optional[Mapping[str, Any]]) -> Budget:
    d = d or {}
    return Budget(budget_total=d.get("budgetTotal"), budget_used=d.get("budgetUsed", 0.0),
                  budget_remaining=d.get("budgetRemaining"), currency=d.get("currency"),
                  percent_used=d.get("percentUsed"))


def _active_jobs(items: Any) -> List[ActiveJob]:
    return [ActiveJob(job=JobState.from_graphql(a.get("job") or {}),
                      resources=Resources.from_graphql(a.get("resources")) or Resources()) for a in items or []]


@dataclass
class ActivitySnapshot:
    """The activity of a scope now (query ``activity``)."""
    scope: Union[ActivityScope, str]
    timestamp: Optional[datetime]
    totals: ResourceTotals
    active_jobs: List[ActiveJob]
    budget: Budget

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "ActivitySnapshot":
        """From GraphQL ``ActivitySnapshot``."""
        return cls(scope=_enum(ActivityScope, d.get("scope")), timestamp=parse_datetime(d.get("timestamp")),
                   totals=ResourceTotals.from_graphql(d.get("totals")), active_jobs=_active_jobs(d.get("activeJobs")),
                   budget=_budget(d.get("budget")))


@dataclass
class ActivityUpdate:
    """The active jobs of a scope and their totals (``snapshot`` is True for the first event of a stream)."""
    scope: Union[ActivityScope, str]
    timestamp: Optional[datetime]
    snapshot: bool
    totals: ResourceTotals
    active_jobs: List[ActiveJob]


@dataclass
class BillingUpdate:
    """A budget after usage was recorded or the budget was set (amounts in ``currency``)."""
    environment_id: Optional[str]
    timestamp: Optional[datetime]
    budget_total: Optional[float]
    budget_used: float
    budget_remaining: Optional[float]
    currency: Optional[str]
    percent_used: Optional[float] = None


@dataclass
class ActivityHint:
    """A short notice (JOB_STARTED, JOB_FINISHED, NEAR_BUDGET, ...)."""
    kind: str
    message: str
    job_id: Optional[str]
    environment_id: Optional[str]
    timestamp: Optional[datetime]
    dropped_before: int = 0


@dataclass
class ContextMismatch:
    """The requested environment is not the token's; the stream ends after this."""
    message: str
    requested_environment_id: Optional[str]
    token_environment_id: Optional[str]
    timestamp: Optional[datetime]


ActivityEvent = Union[ActivityUpdate, BillingUpdate, ActivityHint, ContextMismatch]


def activity_event_from_graphql(d: Mapping[str, Any]) -> Optional[ActivityEvent]:
    """From an ``ActivityEvent`` union member (by ``__typename``); None for an unknown member."""
    kind = d.get("__typename")
    ts = parse_datetime(d.get("timestamp"))
    if kind == "ActivityUpdate":
        return ActivityUpdate(scope=_enum(ActivityScope, d.get("scope")), timestamp=ts, snapshot=bool(d.get("snapshot")),
                              totals=ResourceTotals.from_graphql(d.get("totals")),
                              active_jobs=_active_jobs(d.get("activeJobs")))
    if kind == "BillingUpdate":
        return BillingUpdate(environment_id=d.get("environmentId"), timestamp=ts, budget_total=d.get("budgetTotal"),
                             budget_used=d.get("budgetUsed", 0.0), budget_remaining=d.get("budgetRemaining"),
                             currency=d.get("currency"), percent_used=d.get("percentUsed"))
    if kind == "ActivityHint":
        return ActivityHint(kind=d.get("kind", ""), message=d.get("message", ""), job_id=d.get("jobId"),
                            environment_id=d.get("environmentId"), timestamp=ts,
                            dropped_before=d.get("droppedBefore", 0))
    if kind == "ContextMismatch":
        return ContextMismatch(message=d.get("message", ""), requested_environment_id=d.get("requestedEnvironmentId"),
                               token_environment_id=d.get("tokenEnvironmentId"), timestamp=ts)
    return None


@dataclass(frozen=True)
class MetricPoint:
    """One point of a job's metric series (``Client.metric_series``): ``step`` is its x (the training
    step; an item's sequence number for item metrics; the n-th value of a gauge), ``value`` the value,
    ``timestamp`` when it was reported (aware UTC datetime)."""
    step: int
    value: float
    timestamp: Optional[datetime]

    @classmethod
    def from_graphql(cls, d: Mapping[str, Any]) -> "MetricPoint":
        return cls(step=int(d["step"]), value=float(d["value"]), timestamp=parse_datetime(d.get("timestamp")))
