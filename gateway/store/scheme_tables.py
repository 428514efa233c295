"""Piccolo tables of integration schemes: definitions, mapping versions, runs, per-record results,
dead letters, and the checkpoint and delivery state that make a run resumable and effectively-once."""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class MappingVersion(Table, tablename="unigate_mapping_version"):
    """One saved version of a mapping spec; a scheme names the version it uses."""

    id = Serial(primary_key=True)
    # "<name>@<version>", so (name, version) is unique on every engine. It hides Table.ref (string joins),
    # which nothing uses on this table: no foreign key points here.
    ref = Varchar(length=140, unique=True)  # type: ignore[assignment]
    name = Varchar(length=100, index=True)
    version = Integer()
    spec = JSON()
    comment = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class Scheme(Table, tablename="unigate_scheme"):
    """An integration flow: source -> enrichment -> mapping -> target, on a schedule or by hand."""

    id = Serial(primary_key=True)
    name = Varchar(length=100, unique=True)
    description = Text(default="")
    definition = JSON()  # gateway.schemes.model.SchemeDefinition
    priority = Varchar(length=10, default="normal")
    enabled = Boolean(default=False)  # the schedule runs it
    next_run_at = DoublePrecision(null=True, default=None)  # epoch seconds; moved by compare-and-set
    active_run = Integer(null=True, default=None)  # the one run in progress (compare-and-set lock)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class SchemeRun(Table, tablename="unigate_scheme_run"):
    """One run of a scheme: its window, who drives it, and how its records ended."""

    id = Serial(primary_key=True)
    scheme = ForeignKey(references=Scheme, null=False, on_delete=OnDelete.cascade)
    trigger = Varchar(length=20)  # schedule | manual | replay | cli
    status = Varchar(length=20, index=True)  # queued running stopping succeeded partial failed stopped
    priority = Varchar(length=10, default="normal")
    options = JSON(default={})  # full: ignore the checkpoint; dead_letters: ids to replay
    window_from = DoublePrecision(null=True, default=None)
    window_to = DoublePrecision(null=True, default=None)
    owner = Varchar(length=120, default="")
    heartbeat_at = DoublePrecision(default=0.0)  # epoch seconds; a stale one lets another worker take over
    pulled = Integer(default=0)
    total = Integer(default=0)
    succeeded = Integer(default=0)
    failed = Integer(default=0)
    skipped = Integer(default=0)
    error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)


class RecordResult(Table, tablename="unigate_record_result"):
    """What happened to one record in one run, with the vendor's answer."""

    id = Serial(primary_key=True)
    slot = Varchar(length=260, unique=True)  # "<run>:<record key>": a re-processed record updates its row
    run = Integer(index=True)
    scheme = Integer(index=True)
    record_key = Varchar(length=200)
    content_hash = Varchar(length=64, default="")
    status = Varchar(length=10, index=True)  # pending success failed skipped
    attempts = Integer(default=0)
    answer = JSON(default={})
    error = Text(default="")
    updated_at = DoublePrecision(default=0.0)


class DeadLetter(Table, tablename="unigate_dead_letter"):
    """A record that failed for good: the source record, the mapped record and the error, for replay."""

    id = Serial(primary_key=True)
    slot = Varchar(length=260, unique=True)  # "<scheme>:<record key>": one letter per record
    scheme = Integer(index=True)
    run = Integer()
    record_key = Varchar(length=200)
    stage = Varchar(length=20)  # enrich | mapping | target
    source_record = JSON(default={})
    mapped_record = JSON(null=True, default=None)
    error = JSON(default={})
    status = Varchar(length=10, index=True, default="open")  # open | resolved
    attempts = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Delivery(Table, tablename="unigate_scheme_delivery"):
    """Per scheme and record key: the content last delivered, and the content being pushed right now.

    `pending_hash` is written before a push and cleared after it: one left behind by a killed worker
    says the backend may already hold that content, so it is looked up before pushing again.
    """

    id = Serial(primary_key=True)
    slot = Varchar(length=260, unique=True)  # "<scheme>:<record key>"
    scheme = Integer(index=True)
    delivered_hash = Varchar(length=64, default="")
    pending_hash = Varchar(length=64, default="")
    updated_at = DoublePrecision(default=0.0)


class Checkpoint(Table, tablename="unigate_scheme_checkpoint"):
    """How far a scheme's source has been read: advanced only when a run accounted for every record."""

    id = Serial(primary_key=True)
    scheme = Integer(unique=True)
    value = DoublePrecision()  # epoch seconds: the end of the last completed window
    run = Integer(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())


SCHEME_TABLES: list[type[Table]] = [
    MappingVersion,
    Scheme,
    SchemeRun,
    RecordResult,
    DeadLetter,
    Delivery,
    Checkpoint,
]
