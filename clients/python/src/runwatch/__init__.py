"""runwatch: report, watch and steer long-running jobs on a runwatch server, with the standard library only.

    import runwatch
    client = runwatch.Client()                      # RUNWATCH_URL, RUNWATCH_TOKEN
    with client.job("embed corpus", total=len(docs)) as job:
        for doc in docs:
            embed(doc)
            job.advance()                          # never blocks on the network

    for event in client.watch(job.id):             # SNAPSHOT, progress..., COMPLETED
        print(event.type, event.job.percent, event.job.eta_seconds)

``from runwatch.tqdm import tqdm`` is a drop-in tqdm that also reports (needs tqdm).
Units: counts are items, ``rate`` is items per second, durations and timeouts are seconds.
"""
from __future__ import annotations

from .aio import AsyncClient
from .client import Client, Job
from .errors import (BadUserInput, Conflict, Forbidden, NotFound, RateLimited, RunwatchConnectionError,
                     RunwatchError, ServiceUnavailable, Unauthenticated, WaitTimeout)
from .outputs import LogHandler, Step
from .track import default_client, track
from .commands import CommandListener
from .training import SystemStatsSampler, TrainingRun
from .types import (ActiveJob, ActivityEvent, ActivityHint, ActivityScope, ActivitySnapshot, ActivityUpdate,
                    BillingUpdate, Budget, ChildCounts, ItemResult, JobStep, JobUpdate, JobUpdateType, LogLine, ContextMismatch, JobCommand, JobCommandKind, JobCommandState, JobKind, JobState, JobStatus, LogLevel, MetricPoint, ProgressEvent,
                    ProgressEventType, Resources, ResourceTotals, SampleGenerated, SampleType, SystemStats,
                    TrainingCommand, TrainingCommandKind, TrainingCommandState, TrainingEvent, TrainingLog,
                    TrainingProgress, TrainingStatus, TrainingStatusChange, ValidationResult)

__version__ = "0.1.0"

__all__ = [
    "Client", "AsyncClient", "Job", "JobState", "LogHandler", "Step", "MetricPoint", "TrainingRun", "CommandListener", "SystemStatsSampler", "track",
    "default_client",
    "RunwatchError", "Unauthenticated", "Forbidden", "NotFound", "BadUserInput", "Conflict", "RateLimited",
    "ServiceUnavailable", "RunwatchConnectionError", "WaitTimeout",
    "JobCommand", "JobCommandKind", "JobCommandState", "JobKind", "JobStatus", "ProgressEventType", "TrainingStatus", "TrainingCommandKind", "TrainingCommandState",
    "LogLevel", "ActivityScope", "SampleType", "Resources", "ProgressEvent", "TrainingEvent", "TrainingProgress",
    "TrainingStatusChange", "SampleGenerated", "TrainingLog", "SystemStats", "ValidationResult", "TrainingCommand",
    "ActivityEvent", "ActivityUpdate", "BillingUpdate", "ActivityHint", "ContextMismatch", "ActivitySnapshot",
    "ActiveJob", "ResourceTotals", "Budget", "ChildCounts", "JobUpdate", "JobUpdateType", "ItemResult", "LogLine",
    "JobStep",
]
