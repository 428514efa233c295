"""Declarative configuration: export everything an admin can click as one YAML document, and apply
such a document atomically (validated whole, one transaction), keeping every applied version for
diffs and rollback. Secrets in the document are `${ENV_VAR}` references, never literals.

Applying is a sync: connections, plans and a consumer's subscriptions missing from the document are
deleted; consumers missing from it are suspended (their keys and rules are kept, so a rollback cannot
destroy a developer's app). A consumer's rules (`overrides`, `ip_allow`, `ip_deny`) and the `apis`
section, when written, are the whole of them: an empty list clears, an API not listed has no rules.
When left out (a hand-written document, or a version saved before they were exported), what is stored
is kept, so rolling back to such a version cannot lift an IP restriction; `export` always writes them.
OAuth clients are not part of the document: their secrets exist only as hashes, so no file could bring
them back elsewhere.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec
import yaml
from msgspec import UNSET, UnsetType

from gateway.connectors.registry import SYSTEMS
from gateway.errors import Conflict, InvalidParameter, NotFound
from gateway.store import manage, policy_manage
from gateway.store.accounts import Account, ConfigSnapshot
from gateway.store.crypto import Vault
from gateway.store.engine import write_transaction
from gateway.store.policy_tables import ConsumerPolicy
from gateway.store.snapshot import bump_version
from gateway.store.tables import Connection, Consumer
from policies.authorize import parse_overrides, parse_plan, plan_dict
from policies.body_limit import check_max_body_bytes
from policies.chain import APIS
from policies.cors import CorsConfig, parse_cors
from policies.ipfilter import parse_networks
from portal.services import audit
from portal.services.principal import Principal

FORMAT = 1
# Credentials come from the gateway's environment, but only from variables made for them: a reference to
# any other (UNIGATE_SECRET_KEY, DATABASE_URL with its password) would let whoever may apply a document
# send that secret to a backend of their choosing as a "credential".
CREDENTIAL_PREFIX = "UNIGATE_CONN_"
_REF = re.compile(r"^\$\{(" + CREDENTIAL_PREFIX + r"[A-Za-z0-9_]+)\}$")


class ConnectionSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    system: str
    base_url: str
    credentials: dict[str, str] = {}
    options: dict[str, Any] = {}
    open: bool = False  # every application may use it, granted or not


class PlanSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    description: str = ""
    requires_approval: bool = False
    config: dict[str, Any] = {}  # rate_limits, quotas, priority, apis (policies/authorize.py)


class SubscriptionSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    plan: str
    status: str = "active"  # pending | active | suspended


class ConsumerSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    description: str = ""
    active: bool = True
    owner: str | None = None
    default_connections: dict[str, str] = {}
    # Connections it may use besides the open ones ("*": every one); its defaults are always among them.
    connections: list[str] = []
    subscriptions: dict[str, SubscriptionSpec] = {}  # API -> plan and status
    # Its rules (`unigate consumer-rules set`). UNSET, left out of the document: the stored ones are kept.
    overrides: dict[str, Any] | UnsetType = UNSET  # a partial plan config: rate_limits, quotas, priority
    ip_allow: list[str] | UnsetType = UNSET  # CIDRs; empty: any address not denied
    ip_deny: list[str] | UnsetType = UNSET


class ApiSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """The rules of one unified API (`unigate apis set`)."""

    cors: dict[str, Any] = {}  # a CorsConfig, only what differs from its defaults; no origins: CORS off
    max_body_bytes: int | None = None  # None: the node's default (UNIGATE_MAX_BODY_BYTES)


class Document(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: int = FORMAT
    connections: dict[str, ConnectionSpec] = {}
    plans: dict[str, PlanSpec] = {}
    consumers: dict[str, ConsumerSpec] = {}
    # API -> its rules; an API not listed has none. UNSET, no `apis` section: the stored rules are kept.
    apis: dict[str, ApiSpec] | UnsetType = UNSET


class Change(msgspec.Struct, frozen=True):
    kind: str  # "connection" | "plan" | "consumer" | "api" (its rules)
    name: str
    action: str  # "create" | "update" | "delete" | "suspend" (an API's rules: "delete" = it has none left)


class Preview(msgspec.Struct, frozen=True):
    diff: str  # unified diff of the current export against the document
    changes: list[Change]
    # What the diff was taken against; apply(base=...) refuses when the configuration moved on since.
    base: str = ""


class Applied(msgspec.Struct, frozen=True):
    version: int
    diff: str
    changes: list[Change]


def reference_name(connection: str, field: str) -> str:
    """The environment variable an export names for a credential: UNIGATE_CONN_WDT_MAIN_APPSECRET."""
    return CREDENTIAL_PREFIX + re.sub(r"[^A-Z0-9]+", "_", f"{connection}_{field}".upper())


async def export_document(vault: Vault) -> Document:
    owners = {row["id"]: row["username"] for row in await Account.select(Account.id, Account.username)}
    connections: dict[str, ConnectionSpec] = {}
    for row in await Connection.select().order_by(Connection.name):
        try:
            fields = sorted(vault.open(row["credentials"]))
        except ValueError:
            fields = []
        connections[row["name"]] = ConnectionSpec(
            system=row["system"],
            base_url=row["base_url"],
            credentials={field: f"${{{reference_name(row['name'], field)}}}" for field in fields},
            options=_json(row["options"]),
            open=bool(row["open"]),
        )
    plans = {
        row["name"]: PlanSpec(
            description=row["description"],
            requires_approval=bool(row["requires_approval"]),
            config=row["config"],
        )
        for row in await policy_manage.list_plans()
    }
    subscriptions: dict[int, dict[str, SubscriptionSpec]] = {}
    for sub in await policy_manage.list_subscriptions():
        subscriptions.setdefault(sub["consumer"], {})[sub["api"]] = SubscriptionSpec(
            plan=sub["plan"], status=sub["status"]
        )
    rules = {row["consumer"]: row for row in await ConsumerPolicy.select()}
    consumers = {
        row["name"]: ConsumerSpec(
            description=row["description"],
            active=bool(row["active"]),
            owner=owners.get(row["owner"]),
            default_connections=_json(row["default_connections"]),
            connections=sorted(_json(row["connections"]) or []),
            subscriptions=subscriptions.get(row["id"], {}),
            **policy_manage.consumer_rules(rules.get(row["id"])),
        )
        for row in await Consumer.select().order_by(Consumer.name)
    }
    return Document(connections=connections, plans=plans, consumers=consumers, apis=await _api_rules())


async def _api_rules() -> dict[str, ApiSpec]:
    """The APIs that have rules; a row whose rules were all cleared is none."""
    apis: dict[str, ApiSpec] = {}
    for row in await policy_manage.list_api_policies():
        spec = ApiSpec(cors=_cors_spec(parse_cors(row["cors"])), max_body_bytes=row["max_body_bytes"])
        if spec != ApiSpec():
            apis[row["api"]] = spec
    return apis


def _rules_of(spec: ConsumerSpec | None) -> dict[str, Any]:
    """A consumer's rules as its spec has them; None, a consumer not stored yet: it has none."""
    if spec is None:
        return policy_manage.consumer_rules(None)
    return {part: getattr(spec, part) for part in policy_manage.CONSUMER_RULES}


# The check `unigate consumer-rules set` makes of each part of a consumer's rules.
_RULE_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "overrides": parse_overrides,
    "ip_allow": parse_networks,
    "ip_deny": parse_networks,
}


_CORS_DEFAULTS: dict[str, Any] = msgspec.to_builtins(CorsConfig())


def _cors_spec(config: CorsConfig) -> dict[str, Any]:
    """What differs from the defaults: a short export, and a document's CORS compares like with like
    whether it spelled the defaults out or not."""
    return {key: value for key, value in msgspec.to_builtins(config).items() if value != _CORS_DEFAULTS[key]}


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def dump(document: Document) -> str:
    return yaml.safe_dump(
        msgspec.to_builtins(document), sort_keys=True, allow_unicode=True, default_flow_style=False
    )


async def export_yaml(vault: Vault) -> str:
    header = (
        "# unigate configuration. Credentials are ${UNIGATE_CONN_...} references: set them before\n"
        "# `unigate config apply`; a reference that is not set keeps the value stored for that connection.\n"
    )
    return header + dump(await export_document(vault))


class _Problems:
    """Every problem of a document, so an admin fixes them in one go instead of one per apply."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, detail: str) -> None:
        self.found.append((field, detail))

    @contextlib.contextmanager
    def check(self, prefix: str = "") -> Iterator[None]:
        """A check's refusal as a problem; `prefix` puts a field it names in its place in the document."""
        try:
            yield
        except InvalidParameter as error:
            self.add(f"{prefix}.{error.field}" if prefix else error.field, error.detail)

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise InvalidParameter(*self.found[0])
        if self.found:
            listed = [
                detail if detail.startswith(field) else f"{field}: {detail}" for field, detail in self.found
            ]
            raise InvalidParameter(
                self.found[0][0],
                f"the document has {len(listed)} problems: " + "; ".join(listed),
                problems=[{"field": field, "detail": detail} for field, detail in self.found],
            )


def parse(text: str) -> Document:
    """The document, or InvalidParameter naming the first field at fault (`connections.wdt.base_url`) and
    listing every problem found (`problems`)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidParameter("document", f"the document is not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParameter("document", "the document must be a mapping with connections and consumers")
    problems = _Problems()
    for unknown in sorted(set(map(str, raw)) - {"format", "connections", "plans", "consumers", "apis"}):
        problems.add(unknown, "unknown section; the sections are connections, plans, consumers and apis")
    sections: dict[str, Any] = {}
    declared: dict[str, set[str]] = {}
    ungranted: set[str] = set()  # consumers written without `connections`
    sections_kinds = (
        ("connections", ConnectionSpec),
        ("plans", PlanSpec),
        ("consumers", ConsumerSpec),
        ("apis", ApiSpec),
    )
    for section, kind in sections_kinds:
        if section == "apis" and section not in raw:
            continue  # no section: the stored API rules are kept
        items = raw.get(section) or {}
        sections[section], declared[section] = {}, set()
        if not isinstance(items, dict):
            problems.add(section, f"{section} is a mapping of name to settings")
            continue
        for name, spec in items.items():
            declared[section].add(str(name))
            if section == "consumers" and not (isinstance(spec, dict) and "connections" in spec):
                ungranted.add(str(name))
            with problems.check():
                sections[section][str(name)] = _convert(spec, kind, f"{section}.{name}")
    version = FORMAT
    with problems.check():
        version = _convert(raw.get("format", FORMAT), int, "format")
    document = Document(format=version, **sections)
    for name in ungranted & set(document.consumers):
        # No `connections` (a hand-written document, or a version saved before grants): the defaults it
        # names are the grants. With the key, the list is the whole of them (export writes it), so a default
        # an admin revoked stays revoked wherever the document is applied.
        spec = document.consumers[name]
        spec.connections = sorted(set(spec.default_connections.values()))
    _validate(document, declared, problems)
    problems.raise_any()
    return document


def _convert(value: Any, kind: Any, at: str) -> Any:
    try:
        return msgspec.convert(value if value is not None else {}, kind)
    except msgspec.ValidationError as error:
        message = str(error)
        match = re.search(r" - at `\$\.?(.*)`$", message)
        field = f"{at}.{match.group(1)}" if match and match.group(1) else at
        if missing := re.match(r"^Object missing required field `([^`]+)`", message):
            field = f"{at}.{missing.group(1)}"
        raise InvalidParameter(field, f"{field}: {message.split(' - at ')[0]}") from None


def _validate(document: Document, declared: dict[str, set[str]], problems: _Problems) -> None:
    """Adds each problem to `problems`. A name declared but refused already (`declared`) is not reported
    again where it is referred to."""
    if document.format != FORMAT:
        problems.add("format", f"this unigate reads format {FORMAT}")
    for name, conn in document.connections.items():
        at = f"connections.{name}"
        if not manage.NAME.match(name):
            problems.add(at, f"{name!r} is not a valid connection name: use {manage.NAME_RULE}")
        if conn.system not in SYSTEMS:
            problems.add(f"{at}.system", f"unknown system {conn.system!r}; known: {', '.join(SYSTEMS)}")
        if not conn.base_url.startswith(("http://", "https://")):
            problems.add(f"{at}.base_url", "base_url must start with http:// or https://")
        for field, value in conn.credentials.items():
            if not _REF.match(value):
                problems.add(
                    f"{at}.credentials.{field}",
                    f"credentials are ${{{CREDENTIAL_PREFIX}...}} references to environment variables named "
                    f"{CREDENTIAL_PREFIX}<NAME>, never literal secrets nor other variables of the gateway",
                )
    parsed_plans = {}
    for name, plan in document.plans.items():
        if not name.strip():
            problems.add("plans", "a plan needs a name")
            continue
        with problems.check():
            parsed_plans[name] = parse_plan(plan.config, f"plans.{name}.config")
            plan.config = plan_dict(
                parsed_plans[name]
            )  # defaults spelled out, so diffs compare like with like
    for name, consumer in document.consumers.items():
        at = f"consumers.{name}"
        if not manage.NAME.match(name):
            problems.add(at, f"{name!r} is not a valid consumer name: use {manage.NAME_RULE}")
        for api, sub in consumer.subscriptions.items():
            where = f"{at}.subscriptions.{api}"
            if api not in APIS:
                problems.add(where, f"unknown API {api!r}; known: {', '.join(APIS)}")
            elif sub.plan not in parsed_plans:
                if sub.plan not in declared["plans"]:
                    problems.add(f"{where}.plan", f"there is no plan named {sub.plan!r} in this document")
            elif not any(
                entry == api or entry.startswith(f"{api}:") for entry in parsed_plans[sub.plan].apis
            ):
                problems.add(f"{where}.plan", f"the plan {sub.plan!r} does not include the {api} API")
            if sub.status not in policy_manage.STATUSES:
                problems.add(f"{where}.status", f"the status is one of: {', '.join(policy_manage.STATUSES)}")
        for resource, conn_name in consumer.default_connections.items():
            if conn_name not in declared["connections"]:
                problems.add(
                    f"{at}.default_connections.{resource}",
                    f"there is no connection named {conn_name!r} in this document",
                )
            elif conn_name in document.connections:  # one that serves the API, as `consumers create` checks
                left = [api for api in APIS if api not in consumer.default_connections]
                system = document.connections[conn_name].system
                with problems.check(prefix=at):
                    manage.check_serves(resource, conn_name, system, left)
        for conn_name in consumer.connections:
            if conn_name != "*" and conn_name not in declared["connections"]:
                problems.add(
                    f"{at}.connections", f"there is no connection named {conn_name!r} in this document"
                )
        # The checks of `unigate consumer-rules set`, naming the field by its place in the document; the
        # IP lists come back normalized (203.0.113.5 -> 203.0.113.5/32) as they will be stored.
        for part in policy_manage.CONSUMER_RULES:
            value = getattr(consumer, part)
            if not isinstance(value, UnsetType):
                with problems.check():
                    setattr(consumer, part, _RULE_CHECKS[part](value, f"{at}.{part}"))
    for api, rules in (document.apis or {}).items():
        at = f"apis.{api}"
        if api not in APIS:  # the checks of `unigate apis set`
            problems.add(at, f"unknown API {api!r}; known: {', '.join(APIS)}")
        with problems.check():
            rules.cors = _cors_spec(parse_cors(rules.cors, f"{at}.cors"))
        with problems.check():
            check_max_body_bytes(rules.max_body_bytes, f"{at}.max_body_bytes")


async def _resolve(document: Document, env: Mapping[str, str], vault: Vault) -> dict[str, dict[str, Any]]:
    """Each connection's clear credentials: from the environment, else the value already stored."""
    stored: dict[str, dict[str, Any]] = {}
    stored_urls: dict[str, str] = {}
    for row in await Connection.select(Connection.name, Connection.base_url, Connection.credentials):
        stored_urls[row["name"]] = row["base_url"]
        try:
            stored[row["name"]] = vault.open(row["credentials"])
        except ValueError:
            stored[row["name"]] = {}
    resolved: dict[str, dict[str, Any]] = {}
    for name, conn in document.connections.items():
        creds: dict[str, Any] = {}
        kept: list[str] = []
        for field, ref in conn.credentials.items():
            variable = _REF.match(ref).group(1)  # type: ignore[union-attr]
            if variable in env:
                creds[field] = env[variable]
            elif field in stored.get(name, {}):
                creds[field] = stored[name][field]
                kept.append(field)
            else:
                raise InvalidParameter(
                    f"connections.{name}.credentials.{field}",
                    f"set the environment variable {variable}: no value is stored for it yet",
                )
        manage.check_credentials_follow(
            stored_urls.get(name), conn.base_url, kept, f"connections.{name}.credentials"
        )
        resolved[name] = creds
    return resolved


async def _owners(document: Document) -> dict[str, int]:
    names = {c.owner for c in document.consumers.values() if c.owner}
    rows = (
        await Account.select(Account.id, Account.username).where(Account.username.is_in(list(names)))
        if names
        else []
    )
    found = {row["username"]: int(row["id"]) for row in rows}
    for name, consumer in document.consumers.items():
        if consumer.owner and consumer.owner not in found:
            raise InvalidParameter(f"consumers.{name}.owner", f"there is no account named {consumer.owner!r}")
    return found


def _keep_stored_rules(document: Document, current: Document) -> None:
    """Fill in the rules a document leaves out with the stored ones (a consumer new to the database has
    none) and drop the APIs it lists without rules, so the diff, the changes and the write all see what
    applying it will leave."""
    for name, spec in document.consumers.items():
        for part, stored in _rules_of(current.consumers.get(name)).items():
            if isinstance(getattr(spec, part), UnsetType):
                setattr(spec, part, stored)
    if isinstance(document.apis, UnsetType):
        document.apis = current.apis
    else:
        # An API listed with no rules (`orders: {}`, or only CORS defaults) has none, as `_api_rules` reads
        # them: listed, the preview would report a create (or an update where the effect is a delete) that
        # the write never makes. `_validate` has already refused an unknown API listed so.
        document.apis = {api: rules for api, rules in document.apis.items() if rules != ApiSpec()}


def _changes(current: Document, new: Document) -> list[Change]:
    changes: list[Change] = []
    sections: tuple[tuple[str, Mapping[str, Any], Mapping[str, Any]], ...] = (
        ("connection", current.connections, new.connections),
        ("plan", current.plans, new.plans),
        ("consumer", current.consumers, new.consumers),
        ("api", current.apis or {}, new.apis or {}),
    )
    for kind, old_map, new_map in sections:
        for name in sorted(set(old_map) | set(new_map)):
            if name not in old_map:
                changes.append(Change(kind, name, "create"))
            elif name not in new_map:
                if kind != "consumer":
                    changes.append(Change(kind, name, "delete"))
                elif old_map[name].active:
                    changes.append(Change(kind, name, "suspend"))
            elif msgspec.to_builtins(old_map[name]) != msgspec.to_builtins(new_map[name]):
                changes.append(Change(kind, name, "update"))
    return changes


def _diff(before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), "current", "document"
        )
    )


async def preview(text: str, env: Mapping[str, str], vault: Vault) -> Preview:
    """What applying `text` would change, checked as thoroughly as apply checks it, without writing."""
    document = parse(text)
    await _resolve(document, env, vault)
    await _owners(document)
    current = await export_document(vault)
    current_yaml = dump(current)
    _keep_stored_rules(document, current)
    return Preview(
        diff=_diff(current_yaml, dump(_as_applied(document, current))),
        changes=_changes(current, document),
        base=fingerprint(current_yaml),
    )


def _as_applied(document: Document, current: Document) -> Document:
    """The document as applying it leaves the export, for the preview's diff: a consumer it leaves out is
    suspended, not removed, and keeps its rules (its entry gone from the diff would read as its IP
    restriction lifted); only the grants of connections the document deletes go, as `_write` takes them."""
    gone = set(current.connections) - set(document.connections)
    left_out = {
        name: msgspec.structs.replace(
            spec, active=False, connections=[conn for conn in spec.connections if conn not in gone]
        )
        for name, spec in current.consumers.items()
        if name not in document.consumers
    }
    return msgspec.structs.replace(document, consumers=document.consumers | left_out)


def fingerprint(document_yaml: str) -> str:
    return hashlib.sha256(document_yaml.encode()).hexdigest()[:32]


async def apply(
    me: Principal,
    text: str,
    env: Mapping[str, str],
    vault: Vault,
    *,
    comment: str = "",
    base: str | None = None,
) -> Applied:
    """Validate the whole document, then apply it in one transaction and store it as a new version.

    `base` is the preview's fingerprint: if another admin changed anything since that preview, applying
    would silently undo their change (the document is a sync), so it is refused instead."""
    me.require_admin()
    document = parse(text)
    credentials = await _resolve(document, env, vault)
    owners = await _owners(document)
    async with write_transaction(Connection._meta.db):
        # Read inside the transaction: the state compared with `base`, the rules kept and the changes
        # reported are the ones this apply writes over.
        current = await export_document(vault)
        current_yaml = dump(current)
        if base and base != fingerprint(current_yaml):
            raise Conflict(
                "the configuration changed since your preview: preview again before applying", field="base"
            )
        _keep_stored_rules(document, current)
        changes = _changes(current, document)
        latest = (
            await ConfigSnapshot.select(ConfigSnapshot.document)
            .order_by(ConfigSnapshot.id, ascending=False)
            .first()
        )
        if latest is None or latest["document"] != current_yaml:
            # Clicks since the last apply would be lost to a rollback: keep them as a version first.
            await ConfigSnapshot.insert(
                ConfigSnapshot(actor=me.username, comment="state before apply", document=current_yaml)
            )
        await _write(document, current, credentials, owners, vault)
        # The version is the state as applied (as `export` would show it), so a rollback returns to it.
        applied_yaml = dump(await export_document(vault))
        rows = await ConfigSnapshot.insert(
            ConfigSnapshot(actor=me.username, comment=comment[:200], document=applied_yaml)
        )
        version = int(rows[0]["id"])
        await bump_version()
        # In the transaction: an apply whose record fails is undone, never left unaudited.
        await audit.record(
            me,
            "config.apply",
            f"version {version}",
            after={"comment": comment, "changes": [msgspec.to_builtins(c) for c in changes]},
        )
    return Applied(version=version, diff=_diff(current_yaml, applied_yaml), changes=changes)


async def _write(
    document: Document,
    current: Document,
    credentials: dict[str, dict[str, Any]],
    owners: dict[str, int],
    vault: Vault,
) -> None:
    """Make the database what `document` says; `current` is its export, read in the same transaction."""
    current_plans = {row["name"]: row for row in await policy_manage.list_plans()}
    for name, plan in document.plans.items():
        if name not in current_plans:
            await policy_manage.create_plan(
                name, plan.config, description=plan.description, requires_approval=plan.requires_approval
            )
        elif msgspec.to_builtins(plan) != msgspec.to_builtins(
            PlanSpec(
                description=current_plans[name]["description"],
                requires_approval=bool(current_plans[name]["requires_approval"]),
                config=current_plans[name]["config"],
            )
        ):
            await policy_manage.update_plan(
                name,
                config=plan.config,
                description=plan.description,
                requires_approval=plan.requires_approval,
            )
    for name, conn in document.connections.items():
        await manage.put_connection(
            vault,
            name=name,
            system=conn.system,
            base_url=conn.base_url,
            credentials=credentials[name],
            options=conn.options,
            open=conn.open,
        )
    gone = {row["name"] for row in await Connection.select(Connection.name)} - set(document.connections)
    for name in gone:
        await Connection.delete().where(Connection.name == name)
    await manage.forget_grants(gone)  # those of consumers the document leaves out (and suspends)
    existing = {row["name"]: int(row["id"]) for row in await Consumer.select(Consumer.id, Consumer.name)}
    ids = dict(existing)  # and those inserted below
    for name, spec in document.consumers.items():
        # The grants are the document's (`parse` fills them in from the defaults when it has none).
        values: dict[Any, Any] = {
            Consumer.description: spec.description,
            Consumer.active: spec.active,
            Consumer.owner: owners.get(spec.owner) if spec.owner else None,
            Consumer.default_connections: spec.default_connections,
            Consumer.connections: spec.connections,
        }
        if name in existing:
            await Consumer.update(values).where(Consumer.id == existing[name])
        else:
            inserted = await Consumer.insert(
                Consumer(
                    name=name,
                    description=spec.description,
                    active=spec.active,
                    owner=owners.get(spec.owner) if spec.owner else None,
                    default_connections=spec.default_connections,
                    connections=spec.connections,
                )
            )
            ids[name] = int(inserted[0]["id"])
    for name, consumer_id in existing.items():
        if name not in document.consumers:
            await Consumer.update({Consumer.active: False}).where(Consumer.id == consumer_id)
    await _write_subscriptions(document, ids)
    await _write_rules(document, current, ids)
    for name in current_plans:
        if name not in document.plans:
            await policy_manage.delete_plan(name)


async def _write_subscriptions(document: Document, ids: Mapping[str, int]) -> None:
    current: dict[int, dict[str, dict[str, Any]]] = {}
    for row in await policy_manage.list_subscriptions():
        current.setdefault(row["consumer"], {})[row["api"]] = row
    for name, spec in document.consumers.items():
        consumer_id = ids[name]
        have = current.get(consumer_id, {})
        for api, sub in spec.subscriptions.items():
            if api not in have:
                created = await policy_manage.subscribe(consumer_id, api, sub.plan)
                if created["status"] != sub.status:
                    await policy_manage.set_subscription_status(created["id"], sub.status)
                continue
            if have[api]["plan"] != sub.plan:
                await policy_manage.change_subscription_plan(have[api]["id"], sub.plan)
            if have[api]["status"] != sub.status:
                await policy_manage.set_subscription_status(have[api]["id"], sub.status)
        for api, old in have.items():
            if api not in spec.subscriptions:
                await policy_manage.cancel_subscription(old["id"])


async def _write_rules(document: Document, current: Document, ids: Mapping[str, int]) -> None:
    """Consumers' and APIs' rules through the same service functions as the CLI and the admin API, each
    only where it differs from `current` (`_keep_stored_rules` has filled in what the document left out;
    writing consumers and subscriptions left the rules as `current` read them)."""
    for name, spec in document.consumers.items():
        wanted = _rules_of(spec)
        if wanted != _rules_of(current.consumers.get(name)):
            await policy_manage.set_consumer_policy(ids[name], **wanted)
    for api in APIS:
        rules = (document.apis or {}).get(api, ApiSpec())
        if rules != (current.apis or {}).get(api, ApiSpec()):
            await policy_manage.set_api_policy(api, cors=rules.cors, max_body_bytes=rules.max_body_bytes)


async def list_versions(limit: int = 50) -> list[dict[str, Any]]:
    return list(
        await ConfigSnapshot.select(
            ConfigSnapshot.id, ConfigSnapshot.created_at, ConfigSnapshot.actor, ConfigSnapshot.comment
        )
        .order_by(ConfigSnapshot.id, ascending=False)
        .limit(limit)
    )


async def get_version(version: int) -> dict[str, Any]:
    row = await ConfigSnapshot.select().where(ConfigSnapshot.id == version).first()
    if row is None:
        raise NotFound(f"no configuration version {version}")
    return dict(row)


async def rollback(me: Principal, version: int, env: Mapping[str, str], vault: Vault) -> Applied:
    """Apply an older version again (as a new version, so the rollback itself can be undone)."""
    old = await get_version(version)
    return await apply(me, old["document"], env, vault, comment=f"rollback to version {version}")
