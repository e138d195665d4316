"""The emulated workspace: people by id / email / cio_id, their events, and anonymous events.

Not thread-safe by itself: the server holds one lock around every call.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.emulator.validation import IDENTITY_KEYS

# Customer.io merges anonymous events logged within the last 30 days into a person.
ANONYMOUS_MERGE_WINDOW_S = 30 * 24 * 3600

Ref = tuple[str, str]
"""A person reference: (kind, value) with kind ``id``, ``email`` or ``cio_id``."""


def _normal(ref: Ref) -> Ref:
    """A reference as compared: emails are case-insensitive."""
    kind, value = ref
    return (kind, value.lower()) if kind == "email" else ref


@dataclass(slots=True)
class Person:
    """One person; ``attributes`` excludes the identifiers ``id`` and ``email``."""

    cio_id: str
    created_at: float
    id: str | None = None
    email: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    updated_at: float = 0.0
    attributes_timestamp: int | None = None
    anonymous_ids: set[str] = field(default_factory=set)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The person as the control API shows it."""
        return {
            "cio_id": self.cio_id,
            "id": self.id,
            "email": self.email,
            "attributes": dict(self.attributes),
            "anonymous_ids": sorted(self.anonymous_ids),
            "devices": [{"token": t, **d} for t, d in sorted(self.devices.items())],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


ObjectKey = tuple[str, str]
"""An object reference: (object_type_id, object_id)."""


@dataclass(slots=True)
class StoredObject:
    """One object with its attributes, the people related to it (by cio_id) and the
    anonymous ids related to it, each with the relationship's attributes."""

    object_type_id: str
    object_id: str
    cio_object_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    anonymous: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class StoredEvent:
    """One accepted event; ``cio_id`` is None while it is anonymous."""

    seq: int
    type: str
    name: str
    id: str | None
    timestamp: int | None
    received_at: float
    data: dict[str, Any] | None
    endpoint: str
    cio_id: str | None = None
    anonymous_id: str | None = None
    merged_at: float | None = None

    @property
    def time(self) -> float:
        """When the event happened: its own timestamp, else when it was received."""
        return self.timestamp if self.timestamp is not None else self.received_at


class Store:
    """People, events, ULIDs seen and suppressed identifiers of one workspace."""

    def __init__(self, *, lean: bool = False) -> None:
        self.lean = lean
        self.people: dict[str, Person] = {}
        self._by_id: dict[str, Person] = {}
        self._by_email: dict[str, Person] = {}
        self.events: list[StoredEvent] = []
        self._anonymous: dict[str, list[StoredEvent]] = {}
        self._anonymous_owner: dict[str, str] = {}
        self._seen_ulids: set[str] = set()
        self._suppressed: set[Ref] = set()
        self._cio_ids = itertools.count(1)
        self.merged_events = 0
        self.people_created = 0
        self.objects: dict[ObjectKey, StoredObject] = {}
        self._object_ids = itertools.count(1)
        self._device_owner: dict[str, str] = {}

    # -- lookups -------------------------------------------------------------------------

    def find(self, ref: Ref) -> Person | None:
        """The person a reference names, if any (emails case-insensitively)."""
        kind, value = ref
        if kind == "id":
            return self._by_id.get(value)
        if kind == "email":
            return self._by_email.get(value.lower())
        return self.people.get(value.removeprefix("cio_"))

    def is_duplicate(self, ulid: str | None) -> bool:
        """Whether an event with this ULID was accepted already."""
        return ulid is not None and ulid.upper() in self._seen_ulids

    def _suppressed_ref(self, ref: Ref) -> bool:
        return _normal(ref) in self._suppressed

    def iter_events(self, since: int = 0) -> Iterator[StoredEvent]:
        """Stored events from sequence number ``since`` on."""
        return itertools.islice(self.events, max(since, 0), None)

    # -- people --------------------------------------------------------------------------

    def _create(self, now: float) -> Person:
        person = Person(cio_id=f"{next(self._cio_ids):08x}", created_at=now, updated_at=now)
        self.people[person.cio_id] = person
        self.people_created += 1
        return person

    def _assign(self, person: Person, kind: str, value: str, *, by_cio_id: bool) -> bool:
        """Give a person an id or email; False when it belongs to someone else."""
        index = self._by_id if kind == "id" else self._by_email
        key = value if kind == "id" else value.lower()
        owner = index.get(key)
        if owner is person:
            if kind == "email":
                person.email = value
            return True
        if owner is not None:
            return False
        current = getattr(person, kind)
        if current is not None:
            if not by_cio_id:
                # Changing a set identifier needs a cio_id reference.
                return False
            index.pop(current if kind == "id" else current.lower(), None)
        setattr(person, kind, value)
        index[key] = person
        return True

    def identify(
        self,
        ref: Ref,
        attributes: Mapping[str, Any],
        *,
        timestamp: int | None,
        now: float,
    ) -> str:
        """Create or update a person; returns the outcome (``created``, ``updated``, ``stale``…).

        ``attributes`` may carry ``id`` and ``email`` (identifiers to set), ``_update``
        (update only), and ``anonymous_id`` (merge that anonymous activity in).
        """
        if self._suppressed_ref(ref):
            return "dropped_suppressed"
        person = self.find(ref)
        if person is None and ref[0] == "cio_id":
            return "dropped_unknown_cio_id"
        body_refs = [(k, str(attributes[k])) for k in ("id", "email") if attributes.get(k)]
        if person is None:
            person = next((p for p in map(self.find, body_refs) if p is not None), None)
        outcome = "updated"
        if person is None:
            if attributes.get("_update") is True:
                return "update_only_skipped"
            person = self._create(now)
            outcome = "created"
        elif (
            timestamp is not None
            and person.attributes_timestamp is not None
            and timestamp < person.attributes_timestamp
        ):
            # v2 silently drops updates older than the person's latest change.
            return "stale"
        by_cio_id = ref[0] == "cio_id"
        conflict = False
        for kind, value in ([ref] if not by_cio_id else []) + body_refs:
            conflict |= not self._assign(person, kind, value, by_cio_id=by_cio_id)
        for name, value in attributes.items():
            if name in IDENTITY_KEYS:
                continue
            if self.lean and name != "anonymous_id":
                continue
            if value is None:
                person.attributes.pop(name, None)
            else:
                person.attributes[name] = value
        if timestamp is not None:
            person.attributes_timestamp = max(timestamp, person.attributes_timestamp or 0)
        person.updated_at = now
        anonymous_id = attributes.get("anonymous_id")
        if isinstance(anonymous_id, str) and anonymous_id:
            self._claim_anonymous(person, anonymous_id, now)
        return "conflict" if conflict else outcome

    def _claim_anonymous(self, person: Person, anonymous_id: str, now: float) -> None:
        """Move this anonymous id's events of the last 30 days to the person."""
        person.anonymous_ids.add(anonymous_id)
        self._anonymous_owner[anonymous_id] = person.cio_id
        for obj in self.objects.values():
            # An anonymous relationship carries over when the person is identified.
            if anonymous_id in obj.anonymous:
                obj.people[person.cio_id] = obj.anonymous.pop(anonymous_id)
        kept: list[StoredEvent] = []
        for event in self._anonymous.pop(anonymous_id, []):
            if now - event.time <= ANONYMOUS_MERGE_WINDOW_S:
                event.cio_id = person.cio_id
                event.merged_at = now
                self.merged_events += 1
            else:
                kept.append(event)
        if kept:
            self._anonymous[anonymous_id] = kept

    def delete(self, ref: Ref) -> str:
        """Delete a person (their events stay, as in Customer.io's activity history)."""
        person = self.find(ref)
        if person is None:
            return "not_found"
        self._remove(person)
        return "deleted"

    def _remove(self, person: Person) -> None:
        del self.people[person.cio_id]
        for obj in self.objects.values():
            obj.people.pop(person.cio_id, None)
        for token in person.devices:
            self._device_owner.pop(token, None)
        if person.id is not None:
            self._by_id.pop(person.id, None)
        if person.email is not None:
            self._by_email.pop(person.email.lower(), None)
        for anonymous_id in person.anonymous_ids:
            if self._anonymous_owner.get(anonymous_id) == person.cio_id:
                del self._anonymous_owner[anonymous_id]

    def suppress(self, ref: Ref) -> str:
        """Delete a person and refuse their identifiers until unsuppressed."""
        person = self.find(ref)
        refs = {ref}
        if person is not None:
            refs |= {("id", person.id)} if person.id else set()
            refs |= {("email", person.email)} if person.email else set()
            self._remove(person)
        self._suppressed |= {_normal(r) for r in refs}
        return "suppressed"

    def unsuppress(self, ref: Ref) -> str:
        """Allow a suppressed identifier again."""
        self._suppressed.discard(_normal(ref))
        return "unsuppressed"

    def merge(self, primary: Ref, secondary: Ref, now: float) -> str:
        """Fold the secondary person into the primary one and delete the secondary: its
        identifiers where the primary has none, attributes, events, anonymous ids,
        relationships and devices move over (the primary's own values win)."""
        keep, gone = self.find(primary), self.find(secondary)
        if keep is None or gone is None or keep is gone:
            return "merge_not_found"
        relationships = {
            key: obj.people[gone.cio_id]
            for key, obj in self.objects.items()
            if gone.cio_id in obj.people
        }
        devices = dict(gone.devices)
        self._remove(gone)
        for kind in ("id", "email"):
            value = getattr(gone, kind)
            if value is not None and getattr(keep, kind) is None:
                self._assign(keep, kind, value, by_cio_id=False)
        keep.attributes = {**gone.attributes, **keep.attributes}
        for key, attributes in relationships.items():
            self.objects[key].people.setdefault(keep.cio_id, attributes)
        for token, device in devices.items():
            keep.devices.setdefault(token, device)
            self._device_owner[token] = keep.cio_id
        for event in self.events:
            if event.cio_id == gone.cio_id:
                event.cio_id = keep.cio_id
        for anonymous_id in gone.anonymous_ids:
            keep.anonymous_ids.add(anonymous_id)
            self._anonymous_owner[anonymous_id] = keep.cio_id
        keep.updated_at = now
        return "merged"

    # -- objects and relationships -------------------------------------------------------

    def _person_for(self, ref: Ref, now: float) -> Person | None:
        """The person a relationship or device names, created when unknown (inferred);
        None when the identifier is suppressed or an unknown cio_id."""
        if self._suppressed_ref(ref):
            return None
        person = self.find(ref)
        if person is None and ref[0] != "cio_id":
            person = self._create(now)
            self._assign(person, ref[0], ref[1], by_cio_id=False)
        return person

    def _object(self, key: ObjectKey, *, create: bool) -> StoredObject | None:
        obj = self.objects.get(key)
        if obj is None and create:
            obj = StoredObject(key[0], key[1], f"ob{next(self._object_ids):010x}")
            self.objects[key] = obj
        return obj

    def identify_object(
        self,
        key: ObjectKey,
        attributes: Mapping[str, Any],
        relationships: list[tuple[Ref, dict[str, Any]]],
        anonymous: list[tuple[str, dict[str, Any]]],
        now: float,
    ) -> str:
        """Create or update an object and relate people (or anonymous ids) to it.

        ``null`` or ``""`` removes an attribute, of the object or of a relationship.
        """
        obj = self._object(key, create=True)
        assert obj is not None
        _apply_attributes(obj.attributes, attributes)
        dropped = 0
        for ref, related in relationships:
            person = self._person_for(ref, now)
            if person is None:
                dropped += 1
                continue
            _apply_attributes(obj.people.setdefault(person.cio_id, {}), related)
        for anonymous_id, related in anonymous:
            owner = self._anonymous_owner.get(anonymous_id)
            target = obj.people if owner is not None else obj.anonymous
            _apply_attributes(target.setdefault(owner or anonymous_id, {}), related)
        return "object_dropped_relationships" if dropped else "object_identified"

    def add_relationships(
        self, key: ObjectKey, refs: list[tuple[Ref, dict[str, Any]]], now: float
    ) -> str:
        """Relate people to an existing object."""
        if self._object(key, create=False) is None:
            return "object_not_found"
        return self.identify_object(key, {}, refs, [], now)

    def delete_relationships(self, key: ObjectKey, refs: list[Ref]) -> str:
        """Unrelate people from an object."""
        obj = self._object(key, create=False)
        if obj is None:
            return "object_not_found"
        for ref in refs:
            person = self.find(ref)
            if person is not None:
                obj.people.pop(person.cio_id, None)
        return "relationships_deleted"

    def delete_object(self, key: ObjectKey) -> str:
        """Delete an object; its relationships go with it."""
        return "object_deleted" if self.objects.pop(key, None) else "object_not_found"

    def object_dict(self, obj: StoredObject) -> dict[str, Any]:
        """An object as the control API shows it, with its people's current identifiers."""
        people = []
        for cio_id, attributes in sorted(obj.people.items()):
            person = self.people.get(cio_id)
            people.append(
                {
                    "cio_id": cio_id,
                    "id": person.id if person else None,
                    "email": person.email if person else None,
                    "relationship_attributes": dict(attributes),
                }
            )
        return {
            "object_type_id": obj.object_type_id,
            "object_id": obj.object_id,
            "cio_object_id": obj.cio_object_id,
            "attributes": dict(obj.attributes),
            "relationships": people,
            "anonymous_relationships": [
                {"anonymous_id": a, "relationship_attributes": dict(attrs)}
                for a, attrs in sorted(obj.anonymous.items())
            ],
        }

    def find_object(self, identifiers: Mapping[str, str]) -> ObjectKey | None:
        """The key of the object identifiers name (by type and id, or cio_object_id)."""
        if "cio_object_id" in identifiers:
            wanted = identifiers["cio_object_id"]
            return next((k for k, o in self.objects.items() if o.cio_object_id == wanted), None)
        return identifiers["object_type_id"], identifiers["object_id"]

    # -- events --------------------------------------------------------------------------

    def _new_event(
        self, body: Mapping[str, Any], *, event_type: str, data_key: str, endpoint: str, now: float
    ) -> StoredEvent:
        ulid = body.get("id")
        return StoredEvent(
            seq=len(self.events),
            type=event_type,
            name=str(body["name"]).strip(),
            id=ulid.upper() if isinstance(ulid, str) else None,
            timestamp=body.get("timestamp"),
            received_at=now,
            data=None if self.lean else body.get(data_key),
            endpoint=endpoint,
        )

    def _keep(self, event: StoredEvent) -> str:
        if event.id is not None:
            self._seen_ulids.add(event.id)
        self.events.append(event)
        return "accepted"

    def track(
        self,
        ref: Ref,
        body: Mapping[str, Any],
        *,
        event_type: str,
        data_key: str,
        endpoint: str,
        now: float,
    ) -> str:
        """Store an event for a person, creating the person when unknown (inferred).

        Returns ``accepted``, ``duplicate`` (its ULID was accepted before) or a ``dropped_*``.
        """
        if self.is_duplicate(body.get("id")):
            return "duplicate"
        if self._suppressed_ref(ref):
            return "dropped_suppressed"
        person = self.find(ref)
        if person is None:
            if ref[0] == "cio_id":
                return "dropped_unknown_cio_id"
            person = self._create(now)
            self._assign(person, ref[0], ref[1], by_cio_id=False)
        event = self._new_event(
            body, event_type=event_type, data_key=data_key, endpoint=endpoint, now=now
        )
        event.cio_id = person.cio_id
        return self._keep(event)

    def track_anonymous(
        self, body: Mapping[str, Any], *, event_type: str, endpoint: str, now: float
    ) -> str:
        """Store an anonymous event; it joins a person who already claimed its anonymous id."""
        if self.is_duplicate(body.get("id")):
            return "duplicate"
        event = self._new_event(
            body, event_type=event_type, data_key="data", endpoint=endpoint, now=now
        )
        anonymous_id = body.get("anonymous_id")
        if isinstance(anonymous_id, str):
            event.anonymous_id = anonymous_id
            owner = self._anonymous_owner.get(anonymous_id)
            if owner is not None:
                # Inferred: a known anonymous id attributes new events to its person.
                event.cio_id = owner
                event.merged_at = now
                self.merged_events += 1
            else:
                self._anonymous.setdefault(anonymous_id, []).append(event)
        return self._keep(event)

    # -- devices ------------------------------------------------------------------------

    def add_device(self, ref: Ref, device: Mapping[str, Any], now: float) -> str:
        """Add or update a person's device; a token belongs to one person, so it moves."""
        person = self._person_for(ref, now)
        if person is None:
            return "dropped_suppressed" if self._suppressed_ref(ref) else "dropped_unknown_cio_id"
        token = str(device["token"])
        owner = self._device_owner.get(token)
        if owner is not None and owner != person.cio_id and owner in self.people:
            self.people[owner].devices.pop(token, None)
        previous = person.devices.get(token, {})
        person.devices[token] = {
            "platform": device["platform"],
            "last_used": device.get("last_used", int(now)),
            "attributes": {**previous.get("attributes", {}), **(device.get("attributes") or {})},
        }
        self._device_owner[token] = person.cio_id
        return "device_added"

    def delete_device(self, ref: Ref, token: str) -> str:
        """Remove a device from a person."""
        person = self.find(ref)
        if person is None or person.devices.pop(token, None) is None:
            return "device_not_found"
        self._device_owner.pop(token, None)
        return "device_deleted"

    # -- views ---------------------------------------------------------------------------

    def event_dict(self, event: StoredEvent) -> dict[str, Any]:
        """An event as the control API shows it, with its person's current identifiers."""
        person = self.people.get(event.cio_id) if event.cio_id else None
        return {
            "seq": event.seq,
            "type": event.type,
            "name": event.name,
            "id": event.id,
            "timestamp": event.timestamp,
            "received_at": event.received_at,
            "data": event.data,
            "endpoint": event.endpoint,
            "cio_id": event.cio_id,
            "person_id": person.id if person else None,
            "email": person.email if person else None,
            "anonymous_id": event.anonymous_id,
            "merged": event.merged_at is not None,
        }


def _apply_attributes(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Set attributes; ``null`` or ``""`` removes one, as Customer.io documents."""
    for name, value in changes.items():
        if value is None or value == "":
            target.pop(name, None)
        else:
            target[name] = value
