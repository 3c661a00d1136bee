"""HTTP in front of ``operations.Api``: kube-apiserver's URL layout, verbs and watch streams.

Paths: ``/api/v1/...`` (core) and ``/apis/{group}/{version}/...``, each with
``{resource}[/{name}[/status]]`` for cluster-scoped resources and
``namespaces/{ns}/{resource}[/{name}[/status]]`` for namespaced ones (a namespaced
resource without a namespace lists or watches across all namespaces). Verbs: GET (get,
list, watch with ``watch=1|true``), POST (create, 201), PUT (replace), PATCH, DELETE
(one object or a collection). Discovery (classic, or aggregated v2 when the Accept
header asks for it first), ``/version``, ``/healthz``, ``/livez`` and ``/readyz`` are
served too. Request bodies are JSON, YAML or (Secrets, ConfigMaps, Namespaces: what
kubectl's typed ``create`` commands send) protobuf. Every failure is a ``kind: Status``
body.

A watch answers 200 and then streams one JSON object per line: ADDED, MODIFIED,
DELETED, BOOKMARK (with ``allowWatchBookmarks``: every ``bookmark_interval_s`` and 2 s
before the watch's deadline, as kube-apiserver's cacher schedules them) and ERROR (a
Status; 410 Expired for a resourceVersion older than the kept history — the HTTP status
stays 200, as kube-apiserver's cached watch answers). Without ``timeoutSeconds`` a watch
lasts a random time between ``min_request_timeout_s`` and twice that, as in
kube-apiserver. The watch subscribes in the same synchronous step as it takes its
snapshot (or replays its history), so no change can fall between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from multidict import CIMultiDict

from aliasip_lab.apiserver import discovery, errors, openapi, protobuf
from aliasip_lab.apiserver.access import Access
from aliasip_lab.apiserver.authapi import is_auth_endpoint
from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.operations import Api, WriteOptions, parse_rv
from aliasip_lab.apiserver.registry import NAMESPACES, ResourceType
from aliasip_lab.apiserver.render import Format, encode, negotiate, render_list, render_object
from aliasip_lab.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from aliasip_lab.apiserver.store import ADDED, DELETED, MODIFIED, Change, dumps
from aliasip_lab.apiserver.table import to_table

Json = dict[str, Any]
log = logging.getLogger("aliasip_lab.apiserver")

MAX_BODY_BYTES = 3 * 1024 * 1024  # etcd's default request limit behind kube-apiserver
BOOKMARK = "BOOKMARK"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
JSON_FORMAT = Format()
TRUE = ("1", "t", "T", "true", "TRUE", "True")
FALSE = ("0", "f", "F", "false", "FALSE", "False")
MANAGER_TOO_LONG = "Too long: may not be more than 128 bytes"


@dataclass(frozen=True)
class ServerOptions:
    bookmark_interval_s: float = 60.0
    min_request_timeout_s: float = 1800.0
    watch_queue: int = 10_000  # changes a slow watcher may lag behind before it is closed


@dataclass(frozen=True)
class Target:
    """A resource request after routing."""

    rt: ResourceType
    namespace: str | None  # None: all namespaces (list/watch of a namespaced resource)
    name: str | None
    subresource: str


def parse_bool(params: Any, key: str) -> bool:
    """Query booleans as Go's strconv.ParseBool reads them; anything else is a 400."""
    value = params.get(key)
    if value is None or value == "":
        return False
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise errors.bad_request(f"invalid boolean value {value!r} for {key}")


class _WatchQueue:
    """A subscriber with a bounded backlog; the store drops it if the backlog is full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[Change] = deque()
        self.wakeup = asyncio.Event()
        self.closed = False

    def push(self, change: Change) -> bool:
        if len(self.items) >= self.capacity:
            return False
        self.items.append(change)
        self.wakeup.set()
        return True

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()


class ApiServer:
    """The aiohttp application around one ``Api``."""

    def __init__(
        self, api: Api, options: ServerOptions = ServerOptions(), access: Access | None = None
    ) -> None:
        self.api = api
        self.options = options
        self.address = ""
        # Authentication and RBAC in front of every handler (None: everyone may do all).
        self.access = access

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def shutdown(self) -> None:
        """End every watch (they return at their next wake-up)."""
        self.api.store.close_all()

    # ------------------------------------------------------------------ dispatch

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if self.access is not None:
                answered = await self._filter(request, self.access)
                if answered is not None:
                    return answered
            return await self._dispatch(request)
        except ApiError as error:
            return self._status(error)
        except web.HTTPRequestEntityTooLarge:
            return self._status(
                errors.ApiError(
                    413,
                    "RequestEntityTooLarge",
                    f"Request entity too large: limit is {MAX_BODY_BYTES}",
                )
            )
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug: still answer the way kube-apiserver would
            log.exception("internal error on %s %s", request.method, request.path_qs)
            return self._status(errors.internal(repr(exc)))

    async def _filter(self, request: web.Request, access: Access) -> web.StreamResponse | None:
        """kube-apiserver's filters before any handler: who asks (401), as whom
        (impersonation), may they (403); the review endpoints and TokenRequest, which
        store nothing, are answered here (201)."""
        query = {key: request.query.getall(key) for key in set(request.query.keys())}
        admitted = access.admit(
            self.api, request.method, request.path, query, request.headers.items()
        )
        if not is_auth_endpoint(admitted):
            return None
        body = await self._body(request)
        return self._json(access.answer(self.api, admitted, body), 201)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return self._json(
                {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}
            )
        head = parts[0]
        if head in ("healthz", "livez", "readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if head == "version" and len(parts) == 1:
            return self._json(discovery.version_info())
        if head == "openapi" and len(parts) >= 2 and parts[1] == "v3":
            self._only_get(request)
            return self._openapi_v3(parts[2:])
        if head == "api":
            if len(parts) == 1:
                self._only_get(request)
                if discovery.wants_aggregated(request.headers.get("Accept")):
                    return self._aggregated(discovery.aggregated(self.api.registry, core=True))
                return self._json(discovery.api_versions(self.address))
            if parts[1] != "v1":
                raise errors.no_route()
            return await self._group_version(request, "", "v1", parts[2:])
        if head == "apis":
            registry = self.api.registry
            if len(parts) == 1:
                self._only_get(request)
                if discovery.wants_aggregated(request.headers.get("Accept")):
                    return self._aggregated(discovery.aggregated(registry, core=False))
                return self._json(discovery.api_group_list(registry))
            if len(parts) == 2:
                self._only_get(request)
                group = discovery.api_group(registry, parts[1])
                if group is None:
                    raise errors.no_route()
                return self._json(group)
            return await self._group_version(request, parts[1], parts[2], parts[3:])
        raise errors.no_route()

    def _openapi_v3(self, rest: list[str]) -> web.Response:
        registry = self.api.registry
        if not rest:
            document: Json | None = openapi.index(registry)
        elif rest[0] == "api" and len(rest) == 2:
            document = openapi.group_version_document(registry, "", rest[1])
        elif rest[0] == "apis" and len(rest) == 3:
            document = openapi.group_version_document(registry, rest[1], rest[2])
        else:
            document = None
        if document is None:
            raise errors.no_route()
        response = self._json(document)
        response.headers["Cache-Control"] = "no-cache, private"
        return response

    def _aggregated(self, document: Json) -> web.Response:
        response = self._json(document)
        response.headers["Content-Type"] = discovery.AGGREGATED
        response.headers["Vary"] = "Accept"
        return response

    def _only_get(self, request: web.Request) -> None:
        if request.method != "GET":
            raise errors.method_not_allowed()

    async def _group_version(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        if not rest:
            self._only_get(request)
            listing = discovery.resource_list(self.api.registry, group, version)
            if listing is None:
                raise errors.no_route()
            return self._json(listing)
        target = self._route(group, version, rest)
        method = request.method
        if target.subresource:
            handlers: dict[str, Callable[[web.Request, Target], Awaitable[web.StreamResponse]]] = {
                "GET": self._get,
                "PUT": self._put,
                "PATCH": self._patch,
            }
        elif target.name is None:
            handlers = {
                "GET": self._collection_get,
                "POST": self._post,
                "DELETE": self._delete_collection,
            }
        else:
            handlers = {
                "GET": self._get,
                "PUT": self._put,
                "PATCH": self._patch,
                "DELETE": self._delete,
            }
        handler = handlers.get(method)
        if handler is None:
            raise errors.method_not_allowed()
        return await handler(request, target)

    def _route(self, group: str, version: str, parts: list[str]) -> Target:
        api = self.api
        if (
            not group
            and parts[0] == "namespaces"
            and (len(parts) == 2 or (len(parts) == 3 and parts[2] in ("status", "finalize")))
        ):
            rt = api.resource("", version, "namespaces")
            return self._target(rt, "", parts[1], parts[2] if len(parts) == 3 else "")
        if parts[0] == "namespaces" and len(parts) >= 3:
            if len(parts) > 5:
                raise errors.no_route()
            rt = api.resource(group, version, parts[2])
            if not rt.namespaced:
                raise errors.no_route()
            name = parts[3] if len(parts) > 3 else None
            return self._target(rt, parts[1], name, parts[4] if len(parts) > 4 else "")
        if len(parts) > 3:
            raise errors.no_route()
        rt = api.resource(group, version, parts[0])
        name = parts[1] if len(parts) > 1 else None
        if rt.namespaced and name is not None:
            raise errors.no_route()
        return self._target(
            rt, None if rt.namespaced else "", name, parts[2] if len(parts) > 2 else ""
        )

    @staticmethod
    def _target(rt: ResourceType, namespace: str | None, name: str | None, sub: str) -> Target:
        if sub and (sub != "status" or not rt.status_subresource):
            raise errors.no_route()
        return Target(rt, namespace, name, sub)

    # ------------------------------------------------------------------ reads

    def _format(self, request: web.Request, watch: bool = False) -> Format:
        include = request.query.get("includeObject")
        if include not in (None, "None", "Metadata", "Object"):
            raise errors.bad_request(f"includeObject: unsupported value {include!r}")
        return negotiate(request.headers.get("Accept"), watch=watch, include_object=include)

    async def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None and target.namespace is not None
        if parse_bool(request.query, "watch"):
            fields = FieldSelector(
                parse_field_selector(f"metadata.name={target.name}", target.rt).terms
            )
            return await self._watch(request, target, fields)
        fmt = self._format(request)
        obj = self.api.get(target.rt, target.namespace, target.name)
        return self._json(render_object(target.rt, obj, fmt, self.api.clock()), fmt=fmt)

    def _selectors(
        self, request: web.Request, rt: ResourceType
    ) -> tuple[LabelSelector, FieldSelector]:
        labels = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""), rt)
        return labels, fields

    async def _collection_get(self, request: web.Request, target: Target) -> web.StreamResponse:
        if parse_bool(request.query, "watch"):
            return await self._watch(request, target, None)
        fmt = self._format(request)
        labels, fields = self._selectors(request, target.rt)
        rt = target.rt
        items, rv = self.api.list_objects(
            rt,
            target.namespace,
            labels,
            fields,
            request.query.get("resourceVersion"),
            request.query.get("resourceVersionMatch"),
        )
        if fmt.kind == "json":
            # Each stored object is serialised once per version, not once per LIST.
            envelope = render_list(rt, [], rv, fmt, self.api.clock())
            del envelope["items"]
            body = b"".join(
                (
                    dumps(envelope)[:-1],
                    b',"items":[',
                    b",".join(self.api.serialized(rt, item) for item in items),
                    b"]}",
                )
            )
            return web.Response(body=body, headers={"Content-Type": fmt.content_type})
        return self._json(render_list(rt, items, rv, fmt, self.api.clock()), fmt=fmt)

    # ------------------------------------------------------------------ watch

    async def _watch(
        self, request: web.Request, target: Target, name_fields: FieldSelector | None
    ) -> web.StreamResponse:
        rt = target.rt
        fmt = self._format(request, watch=True)
        labels, fields = self._selectors(request, rt)
        if name_fields is not None:
            fields = FieldSelector(fields.terms + name_fields.terms)
        query = request.query
        bookmarks = parse_bool(query, "allowWatchBookmarks")
        send_initial = parse_bool(query, "sendInitialEvents")
        rv_text = query.get("resourceVersion", "")
        if send_initial and query.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                [
                    errors.Cause(
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents is forbidden for watch unless "
                        "resourceVersionMatch is set to NotOlderThan",
                        "sendInitialEvents",
                    )
                ],
            )
        timeout_s = self._watch_timeout(query.get("timeoutSeconds"))
        deadline = time.monotonic() + timeout_s
        namespace = target.namespace

        def visible(obj: Json) -> bool:
            return self.api.matches(rt, obj, namespace, labels, fields)

        # Snapshot (or history) and subscription in one synchronous step: nothing between.
        queue = _WatchQueue(self.options.watch_queue)
        initial: list[tuple[str, Json]] = []
        backlog: list[Change] = []
        expired: ApiError | None = None
        if send_initial or rv_text in ("", "0"):
            for _, obj in self.api.store.items(rt.group_resource, namespace):
                if visible(obj):
                    initial.append((ADDED, obj))
        else:
            try:
                backlog = self.api.changes_since(rt, parse_rv(rv_text))
            except ApiError as error:
                if error.code != 410:
                    raise
                expired = error
        start_rv = self.api.store.rv
        if expired is None:
            self.api.store.subscribe(rt.group_resource, queue)
        response = web.StreamResponse(status=200, headers={"Content-Type": fmt.content_type})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if expired is not None:
                await response.write(dumps({"type": "ERROR", "object": expired.status()}) + b"\n")
                return response
            writer = _EventWriter(self, rt, fmt, visible)
            chunk: list[bytes | None] = [writer.line(t, o) for t, o in initial]
            chunk += [writer.change(c) for c in backlog]
            if send_initial:
                chunk.append(self._bookmark(rt, start_rv, initial_end=True))
            await self._send(response, chunk)
            next_bookmark = self._next_bookmark(deadline) if bookmarks else None
            while True:  # bounded in time: every pass ends at the deadline at the latest
                if queue.items:
                    batch = [
                        writer.change(queue.items.popleft())
                        for _ in range(min(len(queue.items), 256))
                    ]
                    await self._send(response, batch)
                    continue
                if queue.closed:
                    break
                now = time.monotonic()
                if now >= deadline:
                    break
                if next_bookmark is not None and now >= next_bookmark:
                    await self._send(response, [self._bookmark(rt, self.api.store.rv)])
                    next_bookmark = self._next_bookmark(deadline)
                    continue
                wake = min(deadline, next_bookmark) if next_bookmark is not None else deadline
                queue.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.wakeup.wait(), timeout=max(0.0, wake - now))
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.api.store.unsubscribe(rt.group_resource, queue)
        return response

    def _watch_timeout(self, text: str | None) -> float:
        if text:
            try:
                value = int(text)
            except ValueError:
                raise errors.bad_request(f"invalid timeoutSeconds: {text!r}") from None
            if value > 0:
                return float(value)
        low = self.options.min_request_timeout_s
        return random.uniform(low, 2 * low)

    def _next_bookmark(self, deadline: float) -> float | None:
        """Every ``bookmark_interval_s``, and 2 s before the deadline (cacher.go)."""
        now = time.monotonic()
        beat = now + self.options.bookmark_interval_s
        before_end = deadline - 2.0
        beat = min(beat, before_end)
        return beat if beat >= now else None

    def _bookmark(self, rt: ResourceType, rv: int, initial_end: bool = False) -> bytes:
        metadata: Json = {"resourceVersion": str(rv)}
        if initial_end:
            metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}
        return dumps({"type": BOOKMARK, "object": obj}) + b"\n"

    @staticmethod
    async def _send(response: web.StreamResponse, lines: Sequence[bytes | None]) -> None:
        data = b"".join(line for line in lines if line)
        if data:
            await response.write(data)

    # ------------------------------------------------------------------ writes

    def _write_options(self, request: web.Request, body: Json | None = None) -> WriteOptions:
        dry = list(request.query.getall("dryRun", []))
        if body is not None and isinstance(body.get("dryRun"), list):
            dry += body["dryRun"]
        for value in dry:
            if value != "All":
                raise errors.bad_request(
                    f"Invalid dry run argument: {value!r}; only 'All' is accepted"
                )
        validation = request.query.get("fieldValidation", "Warn") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f'fieldValidation: Invalid value: "{validation}": fieldValidation must be one of '
                '"Ignore", "Strict", "Warn"'
            )
        manager = request.query.get("fieldManager", "")
        if len(manager) > 128:
            raise errors.invalid(
                "meta.k8s.io",
                "PatchOptions" if request.method == "PATCH" else "UpdateOptions",
                "",
                [errors.Cause("FieldValueTooLong", MANAGER_TOO_LONG, "fieldManager")],
            )
        return WriteOptions(
            dry_run=bool(dry),
            field_validation=validation,
            field_manager=manager,
            user_agent=request.headers.get("User-Agent", ""),
            force=parse_bool(request.query, "force"),
        )

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        media = (request.content_type or "application/json").lower()
        try:
            if media in ("application/yaml", "application/x-yaml", "text/yaml"):
                return yaml.safe_load(raw)
            if media in ("application/json", "application/octet-stream", "text/plain"):
                return json.loads(raw) if raw.strip() else None
            if media == protobuf.MEDIA_TYPE:
                return protobuf.decode(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding the request body: {exc}") from None
        raise errors.unsupported_media_type(media, ["application/json", "application/yaml"])

    def _require_namespace(self, target: Target) -> str:
        if target.namespace is None:
            raise errors.method_not_allowed()
        return target.namespace

    async def _post(self, request: web.Request, target: Target) -> web.StreamResponse:
        namespace = self._require_namespace(target)
        body = await self._body(request)
        outcome = self.api.create(target.rt, namespace, body, self._write_options(request))
        return self._json(outcome.obj, outcome.code, warnings=outcome.warnings)

    async def _put(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        namespace = self._require_namespace(target)
        body = await self._body(request)
        outcome = self.api.update(
            target.rt,
            namespace,
            target.name,
            body,
            target.subresource,
            self._write_options(request),
        )
        return self._json(outcome.obj, outcome.code, warnings=outcome.warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        namespace = self._require_namespace(target)
        raw = await request.read()
        outcome = self.api.patch(
            target.rt,
            namespace,
            target.name,
            request.headers.get("Content-Type", ""),
            raw,
            target.subresource,
            self._write_options(request),
        )
        return self._json(outcome.obj, outcome.code, warnings=outcome.warnings)

    async def _delete_options(self, request: web.Request) -> Json:
        body = await self._body(request) if request.can_read_body else None
        options: Json = body if isinstance(body, dict) else {}
        policy = request.query.get("propagationPolicy") or options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan"'
            )
        return options

    async def _delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        namespace = self._require_namespace(target)
        options = await self._delete_options(request)
        outcome = self.api.delete(
            target.rt, namespace, target.name, options, self._write_options(request, options)
        )
        return self._json(outcome.obj, outcome.code)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        if target.rt.group_resource == NAMESPACES or target.namespace is None:
            # kube-apiserver: only list and watch across all namespaces.
            raise errors.method_not_allowed()
        options = await self._delete_options(request)
        labels, fields = self._selectors(request, target.rt)
        items = self.api.delete_collection(
            target.rt,
            target.namespace,
            labels,
            fields,
            options,
            self._write_options(request, options),
        )
        return self._json(
            render_list(target.rt, items, self.api.store.rv, Format(), self.api.clock())
        )

    # ------------------------------------------------------------------ responses

    def _json(
        self,
        obj: Any,
        status: int = 200,
        fmt: Format = JSON_FORMAT,
        warnings: list[str] | None = None,
    ) -> web.Response:
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Content-Type"] = fmt.content_type
        for warning in warnings or []:
            headers.add("Warning", f'299 - "{_escape(warning)}"')
        return web.Response(body=encode(obj, fmt), status=status, headers=headers)

    def _status(self, error: ApiError) -> web.Response:
        return web.Response(
            body=dumps(error.status()),
            status=error.code,
            headers={"Content-Type": "application/json"},
        )


class _EventWriter:
    """Turns stored changes into this watcher's events (selectors, version, format)."""

    def __init__(
        self, server: ApiServer, rt: ResourceType, fmt: Format, visible: Callable[[Json], bool]
    ) -> None:
        self.server = server
        self.rt = rt
        self.fmt = fmt
        self.visible = visible
        self.headers_sent = False

    def change(self, change: Change) -> bytes | None:
        """As kube-apiserver's cacheWatcher: an object that stops matching the selectors
        is DELETED for this watcher (its previous state, at the new resourceVersion), one
        that starts matching is ADDED."""
        now_ok = change.type != DELETED and self.visible(change.obj)
        before_ok = change.prev is not None and self.visible(change.prev)
        if change.type == DELETED:
            return self.line(DELETED, change.obj) if before_ok else None
        if now_ok and (change.type == ADDED or before_ok):
            if self.fmt.kind == "json" and change.obj.get("apiVersion") == self.rt.api_version:
                return change.line()  # serialised once for every watcher
            return self.line(change.type, change.obj)
        if now_ok:
            return self.line(ADDED, change.obj)
        if before_ok and change.prev is not None:
            gone = {
                **change.prev,
                "metadata": {**change.prev.get("metadata", {}), "resourceVersion": str(change.rv)},
            }
            return self.line(DELETED, gone)
        return None

    def line(self, event_type: str, obj: Json) -> bytes:
        view = self.server.api.view(self.rt, obj)
        if self.fmt.kind == "table":
            rendered: Json = to_table(
                self.rt,
                [view],
                now=self.server.api.clock(),
                resource_version=str(view.get("metadata", {}).get("resourceVersion", "")),
                include_object=self.fmt.include_object,
                headers=not self.headers_sent,
                table_version=self.fmt.version,
            )
            self.headers_sent = True
        else:
            rendered = render_object(self.rt, view, self.fmt, self.server.api.clock())
        return dumps({"type": event_type, "object": rendered}) + b"\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


__all__ = ["MODIFIED", "ApiServer", "ServerOptions"]
