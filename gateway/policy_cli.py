"""The policy commands of `unigate`: plans, subscriptions, consumer-rules, oauth-clients, signing-keys, apis.

Each is a thin shell over the portal's services (portal/services/plans.py), so a change is checked and
audited as an admin's is, with "cli" as its actor; refusals print the field at fault.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gateway.settings import Settings

T = TypeVar("T")

NONE = "none"  # given for a limit: remove it (argparse's None means "not given")


def _limit(text: str) -> int | str:
    """A count, or `none` to remove that limit."""
    return NONE if text.lower() == NONE else int(text)


def seconds(text: str) -> float:
    """A number of seconds, >= 0 (argparse turns the ValueError into a usage error naming the option)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _value(given: Any) -> Any:
    return None if given == NONE else given


def _store(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    from gateway.cli import _with_store  # the composition root binds the store (and announces changes)

    return _with_store(settings, work)


async def atomically(work: Callable[[], Awaitable[T]]) -> T:
    """`work`, a change and its audit record, as one write transaction (gateway.store.engine.atomic): a
    record that fails undoes the change, so none goes unaudited."""
    from gateway.store.engine import atomic

    return await atomic(work)()


def _consumer(name: str) -> Callable[[], Awaitable[int]]:
    from gateway.store import manage

    return lambda: manage.consumer_id(name)


def add_commands(sub: Any) -> None:
    """Add the policy commands to the `unigate` parser's subcommands."""
    plans = sub.add_parser("plans", help="plans: rate limits, quotas, priority and allowed APIs")
    actions = plans.add_subparsers(dest="action", required=True)
    for action in ("create", "update"):
        parser = actions.add_parser(action, help=f"{action} a plan (update changes only the options given)")
        parser.add_argument("name")
        parser.add_argument("--per-second", type=_limit, metavar="N|none")
        parser.add_argument("--per-minute", type=_limit, metavar="N|none")
        parser.add_argument("--strategy", choices=("sliding-window", "moving-window"), help="moving = exact")
        parser.add_argument(
            "--per-day", type=_limit, metavar="N|none", help="calendar day, UNIGATE_QUOTA_TIMEZONE"
        )
        parser.add_argument("--per-month", type=_limit, metavar="N|none", help="calendar month")
        parser.add_argument("--priority", help="low, normal or high (admission serves higher first)")
        parser.add_argument("--api", action="append", help="orders, orders:read, ...; repeat (default: all)")
        parser.add_argument("--approval", action=argparse.BooleanOptionalAction, help="subscriptions wait")
        parser.add_argument("--description")
    actions.add_parser("list")
    actions.add_parser("delete").add_argument("name")
    plans.set_defaults(func=cmd_plans)

    subs = sub.add_parser("subscriptions", help="which consumer may call which API under which plan")
    actions = subs.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create", help="subscribe a consumer to APIs (pending if the plan wants approval)"
    )
    create.add_argument("consumer")
    create.add_argument("apis", nargs="+", help="stockouts, orders, logistics")
    create.add_argument("--plan", required=True)
    listing = actions.add_parser("list")
    listing.add_argument("--consumer")
    listing.add_argument("--status", choices=("pending", "active", "suspended"))
    for action, text in (
        ("approve", "let a pending subscription through"),
        ("suspend", "stop a subscription"),
        ("resume", "let a suspended subscription through again"),
        ("cancel", "delete a subscription"),
    ):
        actions.add_parser(action, help=text).add_argument("id", type=int)
    move = actions.add_parser("plan", help="move a subscription to another plan")
    move.add_argument("id", type=int)
    move.add_argument("plan")
    subs.set_defaults(func=cmd_subscriptions)

    rules = sub.add_parser("consumer-rules", help="per-consumer limit overrides and IP allow/deny lists")
    actions = rules.add_subparsers(dest="action", required=True)
    put = actions.add_parser("set", help="replace the parts given")
    put.add_argument("consumer")
    put.add_argument("--override", action="append", metavar="PATH=VALUE", help="rate_limits.per_minute=1000")
    put.add_argument(
        "--clear-overrides",
        action="store_true",
        help="drop every override, then apply any --override",
    )
    put.add_argument("--allow-ip", action="append", metavar="CIDR", help="only these addresses; repeat")
    put.add_argument("--deny-ip", action="append", metavar="CIDR", help="never these addresses; repeat")
    put.add_argument(
        "--clear-ip-rules",
        action="store_true",
        help="drop both IP lists, then apply any --allow-ip/--deny-ip",
    )
    actions.add_parser("show").add_argument("consumer")
    rules.set_defaults(func=cmd_consumer_rules)

    clients = sub.add_parser("oauth-clients", help="OAuth2 client-credentials clients")
    actions = clients.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="prints the client secret once")
    create.add_argument("consumer")
    create.add_argument("--scope", action="append", required=True, help="orders:read, pii:read, ...; repeat")
    create.add_argument("--name", default="")
    actions.add_parser("list").add_argument("--consumer")
    rotate = actions.add_parser("rotate", help="a new secret; the old one works for --overlap seconds")
    rotate.add_argument("client_id")
    rotate.add_argument("--overlap", type=seconds, default=0.0, metavar="SECONDS")
    actions.add_parser("revoke", help="no new tokens, and issued ones stop working").add_argument("client_id")
    scopes = actions.add_parser(
        "scopes", help="set the client's scopes; issued tokens lose removed ones at once"
    )
    scopes.add_argument("client_id")
    scopes.add_argument("--scope", action="append", required=True, help="orders:read, pii:read, ...; repeat")
    clients.set_defaults(func=cmd_oauth_clients)

    keys = sub.add_parser("signing-keys", help="the keys that sign access tokens (JWKS)")
    actions = keys.add_subparsers(dest="action", required=True)
    rotate = actions.add_parser("rotate", help="publish a new key; it signs after --activate-in seconds")
    rotate.add_argument(
        "--activate-in",
        type=seconds,
        metavar="SECONDS",
        help="default 60: the JWKS document's cache lifetime",
    )
    actions.add_parser("list")
    actions.add_parser("retire", help="stop publishing and accepting a key now").add_argument("kid")
    keys.set_defaults(func=cmd_signing_keys)

    apis = sub.add_parser("apis", help="per-API rules: CORS and the request body cap")
    actions = apis.add_subparsers(dest="action", required=True)
    put = actions.add_parser("set")
    put.add_argument("api", help="stockouts, orders or logistics")
    put.add_argument("--cors-origin", action="append", metavar="ORIGIN", help="https://shop.example.com or *")
    put.add_argument("--cors-method", action="append", metavar="METHOD", help="default GET and POST")
    put.add_argument("--cors-credentials", action="store_true")
    put.add_argument("--no-cors", action="store_true", help="turn CORS off for this API")
    put.add_argument("--max-body-bytes", type=_limit, metavar="N|none", help="none: the node's default")
    actions.add_parser("list")
    apis.set_defaults(func=cmd_apis)


def _plan_config(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    config = json.loads(json.dumps(base))  # a deep copy of plain JSON
    for section, key, value in (
        ("rate_limits", "per_second", args.per_second),
        ("rate_limits", "per_minute", args.per_minute),
        ("rate_limits", "strategy", args.strategy),
        ("quotas", "per_day", args.per_day),
        ("quotas", "per_month", args.per_month),
    ):
        if value is not None:
            config.setdefault(section, {})[key] = _value(value)
    if args.priority is not None:
        config["priority"] = args.priority
    if args.api:
        config["apis"] = args.api
    return config


def cmd_plans(args: argparse.Namespace, settings: Settings) -> int:
    from portal.services import plans
    from portal.services.principal import CLI

    if args.action == "list":
        for row in _store(settings, plans.list_plans):
            flag = "  (approval)" if row["requires_approval"] else ""
            print(f"{row['name']:<20} {json.dumps(row['config'], ensure_ascii=False)}{flag}")
    elif args.action == "delete":
        _store(settings, lambda: plans.delete_plan(CLI, args.name))
        print(f"plan {args.name} deleted")
    elif args.action == "create":
        config = _plan_config(args, {})
        _store(
            settings,
            lambda: plans.create_plan(
                CLI,
                args.name,
                config,
                description=args.description or "",
                requires_approval=bool(args.approval),
            ),
        )
        print(f"plan {args.name} created")
    else:

        async def update() -> None:
            config = _plan_config(args, (await plans.get_plan(args.name))["config"])
            await plans.update_plan(
                CLI, args.name, config=config, description=args.description, requires_approval=args.approval
            )

        _store(settings, update)
        print(f"plan {args.name} updated")
    return 0


def cmd_subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import policy_manage as pm
    from portal.services import plans
    from portal.services.principal import CLI

    if args.action == "create":

        async def create() -> list[dict[str, Any]]:
            consumer = await _consumer(args.consumer)()
            return [await plans.subscribe(CLI, consumer, api, args.plan) for api in args.apis]

        for api, made in zip(args.apis, _store(settings, create), strict=True):
            print(f"{args.consumer} -> {api} under {args.plan}: subscription {made['id']} {made['status']}")
    elif args.action == "list":

        async def listing() -> list[dict[str, Any]]:
            consumer = await _consumer(args.consumer)() if args.consumer else None
            return await pm.list_subscriptions(consumer, args.status)

        for row in _store(settings, listing):
            print(
                f"{row['id']:>5}  {row['consumer_name']:<20} {row['api']:<10} {row['plan']:<16}",
                row["status"],
            )
    elif args.action == "plan":
        _store(settings, lambda: plans.change_plan(CLI, args.id, args.plan))
        print(f"subscription {args.id} moved to {args.plan}")
    elif args.action == "cancel":
        _store(settings, lambda: plans.cancel_subscription(CLI, args.id))
        print(f"subscription {args.id} cancelled")
    else:
        status = {"approve": "active", "resume": "active", "suspend": "suspended"}[args.action]
        _store(settings, lambda: plans.set_subscription_status(CLI, args.id, status))
        print(f"subscription {args.id} {status}")
    return 0


def _override(pairs: list[str]) -> dict[str, Any]:
    """`rate_limits.per_minute=1000` pairs as a nested object; values are JSON, else text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        path, _, text = pair.partition("=")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        *parents, leaf = path.strip().split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def cmd_consumer_rules(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import policy_manage as pm
    from portal.services import plans
    from portal.services.principal import CLI

    if args.action == "show":

        async def show() -> dict[str, Any]:
            return await pm.get_consumer_policy(await _consumer(args.consumer)())

        print(json.dumps(_store(settings, show), ensure_ascii=False, indent=2))
        return 0
    # A clear flag empties that part first; what is given beside it is then the whole new list, so
    # `--clear-ip-rules --allow-ip 10.0.0.0/8` restricts the consumer instead of quietly opening it.
    given = _override(args.override) if args.override else None
    overrides = (given or {}) if args.clear_overrides else given
    allow = (args.allow_ip or []) if args.clear_ip_rules else args.allow_ip
    deny = (args.deny_ip or []) if args.clear_ip_rules else args.deny_ip

    async def put() -> None:
        consumer = await _consumer(args.consumer)()
        await plans.set_overrides(CLI, consumer, overrides=overrides, ip_allow=allow, ip_deny=deny)

    _store(settings, put)
    print(f"rules of {args.consumer} saved")
    if lifted := _nulls(overrides or {}):
        # A null override removes the plan's limit for this application: said, as it is easily meant as
        # "no override" (which --clear-overrides is).
        print(f"{args.consumer} now has no limit for: {', '.join(lifted)} (--clear-overrides: the plan's)")
    return 0


def _nulls(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths whose override is null."""
    found: list[str] = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            found += _nulls(value, f"{prefix}{key}.")
        elif value is None:
            found.append(f"{prefix}{key}")
    return found


def cmd_oauth_clients(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import policy_manage as pm
    from gateway.store.crypto import Vault
    from portal.services import plans
    from portal.services.principal import CLI

    if args.action == "create":

        async def create() -> tuple[dict[str, Any], str]:
            consumer = await _consumer(args.consumer)()
            return await plans.create_client(CLI, Vault(settings.secret_key), consumer, args.scope, args.name)

        client, secret = _store(settings, create)
        print(f"OAuth client for {args.consumer} (the secret is shown once, store it now):")
        print(f"client_id:     {client['client_id']}\nclient_secret: {secret}")
    elif args.action == "list":

        async def listing() -> list[dict[str, Any]]:
            consumer = await _consumer(args.consumer)() if args.consumer else None
            return await pm.list_oauth_clients(consumer)

        for row in _store(settings, listing):
            state = "revoked" if row["revoked_at"] else "active"
            print(f"{row['client_id']:<30} {row['consumer_name']:<20} {' '.join(row['scopes']):<40} {state}")
    elif args.action == "rotate":
        overlap = timedelta(seconds=args.overlap)

        _, secret = _store(settings, lambda: plans.rotate_any_client_secret(CLI, args.client_id, overlap))
        print(f"new secret for {args.client_id} (shown once):\n{secret}")
    elif args.action == "scopes":

        async def set_scopes() -> dict[str, Any]:
            app = await plans.client_app(args.client_id)
            return await plans.set_client_scopes(CLI, app, args.client_id, args.scope)

        print(f"OAuth client {args.client_id}: {' '.join(_store(settings, set_scopes)['scopes'])}")
    else:

        async def revoke() -> dict[str, Any]:
            return await plans.revoke_client(CLI, await plans.client_app(args.client_id), args.client_id)

        _store(settings, revoke)
        print(f"OAuth client {args.client_id} revoked")
    return 0


def cmd_signing_keys(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import policy_manage as pm
    from gateway.store.crypto import Vault

    if args.action == "rotate":
        delay = pm.KEY_ACTIVATION_DELAY if args.activate_in is None else timedelta(seconds=args.activate_in)

        async def rotate() -> dict[str, Any]:
            key = await pm.make_signing_key()  # before the transaction: it takes a while

            async def publish() -> dict[str, Any]:
                rotation = await pm.rotate_signing_key(
                    Vault(settings.secret_key),
                    token_ttl=timedelta(seconds=settings.token_ttl_seconds),
                    activate_in=delay,
                    key=key,
                )
                made = next(row for row in await pm.list_signing_keys() if row["kid"] == rotation.kid)
                # A rotation also retires the keys whose tokens have all expired: the log says which.
                await _record("signing_key.rotate", rotation.kid, after={**made, "retired": rotation.retired})
                return made

            return await atomically(publish)

        made = _store(settings, rotate)
        print(
            f"signing key {made['kid']} published; it signs from {made['activates_at']:%Y-%m-%d %H:%M:%S %Z}"
        )
    elif args.action == "list":
        now = datetime.now(UTC)
        rows = _store(settings, pm.list_signing_keys)
        signing = _signing_kid(rows, now)
        for row in rows:
            print(
                f"{row['kid']:<18} {row['algorithm']:<6}",
                f"signs from {row['activates_at']:%Y-%m-%d %H:%M:%S}  {_key_state(row, now, signing)}",
            )
    else:

        async def retire() -> str | None:
            before = await _signing_key(args.kid)
            brought_forward = await pm.retire_signing_key(args.kid)
            after = await _signing_key(args.kid)
            await _record(
                "signing_key.retire",
                args.kid,
                before=before,
                after={**after, "brought_forward": brought_forward},
            )
            return brought_forward

        brought_forward = _store(settings, lambda: atomically(retire))
        print(f"signing key {args.kid} retired")
        if brought_forward:
            print(f"signing key {brought_forward} signs from now on (it was waiting for its activation)")
        elif not _store(settings, _signing_now):
            print("no key signs now: no token can be issued until `unigate signing-keys rotate`")
    return 0


def _signing_kid(rows: list[dict[str, Any]], now: datetime) -> str | None:
    """The key that signs now: the newest published one already active (policies/oauth.py signing_key)."""
    active = [row["kid"] for row in rows if row["retired_at"] is None and row["activates_at"] <= now]
    return active[-1] if active else None


def _key_state(row: dict[str, Any], now: datetime, signing: str | None) -> str:
    if row["retired_at"] is not None:
        return f"retired {row['retired_at']:%Y-%m-%d %H:%M}"
    if row["kid"] == signing:
        return "active: signs now"
    if row["activates_at"] > now:
        return "waiting: published, signs from its activation"
    return "active: published, verifies the tokens it signed"  # a newer key signs


async def _signing_key(kid: str) -> dict[str, Any]:
    from gateway.errors import NotFound
    from gateway.store import policy_manage as pm

    for row in await pm.list_signing_keys():
        if row["kid"] == kid:
            return row
    raise NotFound(f"no signing key {kid!r}")


async def _record(action: str, target: str, *, before: Any = None, after: Any = None) -> None:
    """A change the portal has no service for, in the audit log as the portal records its own."""
    from portal.services import audit
    from portal.services.principal import CLI

    await audit.record(CLI, action, target, before=before, after=after)


async def _signing_now() -> bool:
    from gateway.store import policy_manage as pm

    return any(row["retired_at"] is None for row in await pm.list_signing_keys())


def cmd_apis(args: argparse.Namespace, settings: Settings) -> int:
    from msgspec import UNSET

    from gateway.store import policy_manage as pm

    if args.action == "list":
        for row in _store(settings, pm.list_api_policies):
            cap = row["max_body_bytes"] or "default"
            print(
                f"{row['api']:<10} body cap {cap!s:<10}",
                f"cors {json.dumps(row['cors'].get('allow_origins', []))}",
            )
        return 0
    cors: dict[str, Any] | None = None
    if args.no_cors:
        cors = {}
    elif args.cors_origin:
        cors = {"allow_origins": args.cors_origin, "allow_credentials": args.cors_credentials}
        if args.cors_method:
            cors["allow_methods"] = args.cors_method
    cap = UNSET if args.max_body_bytes is None else _value(args.max_body_bytes)

    async def put() -> None:
        before = next((row for row in await pm.list_api_policies() if row["api"] == args.api), None)
        await pm.set_api_policy(args.api, cors=cors, max_body_bytes=cap)
        after = next(row for row in await pm.list_api_policies() if row["api"] == args.api)
        await _record("api_policy.update", args.api, before=before, after=after)

    _store(settings, lambda: atomically(put))
    print(f"rules of the {args.api} API saved")
    return 0
