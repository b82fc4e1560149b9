"""AuditEvent: the hash-chained audit log (``core.audit``) as FHIR, so a patient's app can show who accessed
what (``identity.access_log`` decides who may review which entries, and audits every review).

Mapping of one :class:`~caresync.core.audit.AuditEntry`:

- ``id`` is the entry's SHA-256 chain hash (64 hex characters: unguessable, unlike the sequence number);
  ``entity`` "Security Audit Log" carries the sequence number, the hash and the previous entry's hash in
  ``detail``, so a client can show the chain (tamper evidence) and check that entries link up;
- ``type`` is a DICOM audit event ID (Patient Record, User Authentication, Audit Log Used …) chosen by the
  action's domain, ``subtype`` our action name (``urn:caresync:audit-action``) plus a DICOM subtype where
  one exists (Login, Logout, Emergency Override Started …);
- ``action`` C/R/U/D/E from the action's verb, ``outcome`` 0/4/8 from success/denied/failure;
- ``agent`` is the person who acted (requestor), with their role and network address; ``source`` CareSync;
- ``entity`` the patient (role Patient) and the resource the action concerned.

Search is newest first, keyset-paged on the sequence number, with ``total``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC

from caresync.core.audit import AuditEntry
from caresync.core.errors import NotFound
from caresync.fhir.context import JSON, FhirContext, reference
from caresync.fhir.outcome import invalid
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.search import SearchQuery, SearchResult, date_range, drop_empty, token
from caresync.identity import access_log
from caresync.scheduling import directory

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACTION_SYSTEM = "urn:caresync:audit-action"
ROLE_SYSTEM = "urn:caresync:role"
USER_SYSTEM = "urn:caresync:user"
RESOURCE_SYSTEM = "urn:caresync:resource"
AUDIT_LOG_SYSTEM = "urn:caresync:audit-log"
ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"
SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"
ACTION_CODE_SYSTEM = "http://hl7.org/fhir/audit-event-action"
OUTCOME_SYSTEMS = (
    "http://hl7.org/fhir/audit-event-outcome",
    "http://terminology.hl7.org/CodeSystem/audit-event-outcome",
)
NETWORK_IP = "2"  # AuditEventAgentNetworkType: IP Address
HASH_ID = re.compile(r"^[0-9a-f]{64}$")
NOBODY = uuid.UUID(int=0)  # matches no account

# --- tables ---------------------------------------------------------------------------------------------

# Our outcomes -> AuditEventOutcome (0 success, 4 minor failure, 8 serious failure).
OUTCOMES = {"success": "0", "denied": "4", "failure": "8"}
OUTCOME_TEXT = {"success": "", "denied": "Access denied", "failure": "The action failed"}

# DICOM audit event IDs (PS3.16 CID 400) and subtypes (CID 401) used here, with their displays.
DCM_DISPLAY = {
    "110100": "Application Activity",
    "110101": "Audit Log Used",
    "110106": "Export",
    "110107": "Import",
    "110109": "Order Record",
    "110110": "Patient Record",
    "110113": "Security Alert",
    "110114": "User Authentication",
    "110122": "Login",
    "110123": "Logout",
    "110127": "Emergency Override Started",
    "110132": "Use of Restricted Function",
    "110137": "User security Attributes Changed",
}
PATIENT_RECORD, APPLICATION = "110110", "110100"
# The event type of each action domain (the action's first segment; two segments where they differ).
DOMAIN_TYPES = {
    "activity": PATIENT_RECORD,
    "adherence": PATIENT_RECORD,
    "analytics": APPLICATION,  # aggregates; a patient's risk is a record access (ACTION_TYPES)
    "appointment": PATIENT_RECORD,
    "article": APPLICATION,
    "audit": "110101",
    "auth": "110114",
    "backup": APPLICATION,
    "bloodbank": APPLICATION,
    "bloodbank.request": "110109",
    "bloodbank.reports": "110106",
    "calendar_feed": PATIENT_RECORD,
    "careteam": PATIENT_RECORD,
    "consent": PATIENT_RECORD,
    "credential": APPLICATION,
    "demo": "110107",
    "directory": APPLICATION,
    "dispense": "110109",
    "document": PATIENT_RECORD,  # scanned documents, consultations
    "dose": PATIENT_RECORD,
    "encounter": PATIENT_RECORD,
    "fhir": "110113",
    "imaging": PATIENT_RECORD,  # studies, analyses and feedback
    "imaging.model": APPLICATION,  # the model registry
    "message": PATIENT_RECORD,
    "note": PATIENT_RECORD,
    "organisation": APPLICATION,
    "patient": PATIENT_RECORD,
    "prescription": "110109",
    "queue": PATIENT_RECORD,
    "record": PATIENT_RECORD,
    "schedule": APPLICATION,
    "scheduling": APPLICATION,
    "share": "110106",
    "signing_key": "110113",
    "task": PATIENT_RECORD,
    "user": APPLICATION,
    "waitlist": PATIENT_RECORD,
}
# Exact actions whose type or DICOM subtype differs from their domain's.
ACTION_TYPES = {
    "auth.login": ("110114", "110122"),
    "auth.logout": ("110114", "110123"),
    "patient.break_glass": ("110113", "110127"),
    "patient.access_history": ("110101", None),
    "fhir.scope": ("110113", "110132"),
    "analytics.risk.patient": (PATIENT_RECORD, None),
    "record.export": ("110106", None),
    "record.download": ("110106", None),
    "credential.import": ("110107", None),
    "user.update": ("110113", "110137"),
}

# The verb (last segment of the action) -> AuditEventAction: Create, Read (view/print), Update, Delete,
# Execute (a system function, log-on, or a query/search).
C, R, U, D, E = "C", "R", "U", "D", "E"
VERBS: dict[str, str] = {
    # create
    "create": C,
    "add": C,
    "register": C,
    "self_register": C,
    "book": C,
    "submit": C,
    "send": C,
    "join": C,
    "grant": C,
    "log": C,
    "record": C,
    "import": C,
    "offer": C,
    "reply": C,
    "thread_create": C,
    "request": C,
    "app_token": C,
    "recovery_codes": C,
    "mfa_enrol_start": C,
    "care_team_add": C,
    "renew": C,
    "wave": C,
    "load": C,
    "upload": C,
    "ocr": C,  # the searchable PDF filed into the record
    "transcribe": C,
    "rename": U,  # a consultation's speakers named
    "serve": U,  # an imaging model version made the one that serves its task
    # read (view, print, export)
    "read": R,
    "view": R,
    "models": R,  # the list of risk model versions
    "run": E,  # a forecast run
    "history": R,
    "access_history": R,
    "summary": R,
    "form": R,
    "dashboard": R,
    "board": R,
    "feed": R,
    "badges": R,
    "streaks": R,
    "stats": R,
    "ics": R,
    "download": R,
    "export": R,
    "open": R,
    "print": R,
    "qr": R,
    "document": R,
    "team": R,
    "care_team": R,
    "policy_read": R,
    "settings_read": R,
    "settings_page": R,
    "unread": R,
    "own_place": R,
    "flags": R,
    "page": R,
    "schedule": R,
    "redeem": R,
    "mine": R,
    "location": R,
    "inbox": R,
    "progress": R,
    "series": R,
    "forecast": R,
    "shortages": R,
    "donations": R,
    "me": R,
    # update
    "update": U,
    "edit": U,
    "amend": U,
    "status": U,
    "step": U,
    "reschedule": U,
    "policy_update": U,
    "settings_update": U,
    "speakers": U,
    "approve": U,
    "triage": U,
    "call": U,
    "escalate": U,
    "mark": U,
    "accept": U,
    "decline": U,
    "complete": U,
    "no_show": U,
    "no-show": U,
    "arrive": U,
    "check-in": U,
    "fulfil": U,
    "start": U,
    "finish": U,
    "review": U,
    "suspend": U,
    "dispatch": U,
    "receive": U,
    "allocate": U,
    "crossmatch": U,
    "issue": U,
    "transfuse": U,
    "return": U,
    "emergency_release": U,
    "close": U,
    "publish": U,
    "password_change": U,
    "password_reset": U,
    "mfa_enrol": U,
    "mfa_disable": U,
    "request_decide": U,
    "time_off": U,
    "dispense": U,
    # delete (cancel, revoke, withdraw, end)
    "cancel": D,
    "revoke": D,
    "remove": D,
    "delete": D,
    "archive": D,
    "request_withdraw": D,
    "leave": D,
    "left": D,
    "lift": D,
    "expire": D,
    "undo": D,
    # execute (sign-in, system functions, queries)
    "login": E,
    "logout": E,
    "mfa": E,
    "verify": E,
    "scan": E,
    "search": E,
    "list": E,
    "list_own": E,
    "thread_list": E,
    "request_list": E,
    "patients": E,
    "locations": E,
    "proposals": E,
    "queue": E,
    "donation_slots": E,
    "donation_sites": E,
    "scope": E,
    "restore": E,
    "break_glass": E,
    "reminder": E,
    "reminders": E,
    "password_reset_request": E,
}
VERB_PREFIXES = {"export_": R}  # e.g. bloodbank.reports.export_csv
ACTION_DISPLAY = {C: "create", R: "read", U: "update", D: "delete", E: "execute"}
# Our resource types that are FHIR resource types with the same id on this server (literal references).
PRACTITIONER_ROLES = frozenset({"doctor", "nurse", "pharmacist"})  # staff who may have a directory profile
FHIR_REFERENCED = frozenset({"Patient", "Appointment", "MedicationRequest", "MedicationDispense"})


def action_code(action: str) -> str:
    """The AuditEventAction (C/R/U/D/E) of one of our action names; E when the verb is unknown."""
    verb = action.rsplit(".", 1)[-1]
    if verb in VERBS:
        return VERBS[verb]
    for prefix, code in VERB_PREFIXES.items():
        if verb.startswith(prefix):
            return code
    return E


def event_type(action: str, has_patient: bool = False) -> tuple[str, str | None]:
    """The DICOM event ID and optional subtype of an action (a patient-record event for an unknown
    domain that concerns a patient, else application activity)."""
    if action in ACTION_TYPES:
        return ACTION_TYPES[action]
    parts = action.split(".")
    for domain in (".".join(parts[:2]), parts[0]):
        if domain in DOMAIN_TYPES:
            return DOMAIN_TYPES[domain], None
    return (PATIENT_RECORD if has_patient else APPLICATION), None


def _dcm(code: str) -> JSON:
    return {"system": DCM, "code": code, "display": DCM_DISPLAY[code]}


# --- mapping ----------------------------------------------------------------------------------------------


def _agent(entry: AuditEntry, actor_links: dict[uuid.UUID, str]) -> JSON:
    who: JSON = {"display": entry.actor_name or entry.actor_role}
    if entry.actor_id is not None:
        if entry.actor_id in actor_links:
            who["reference"] = actor_links[entry.actor_id]
        who["identifier"] = {"system": USER_SYSTEM, "value": str(entry.actor_id)}
    agent: JSON = {
        "role": [{"coding": [{"system": ROLE_SYSTEM, "code": entry.actor_role}], "text": entry.actor_role}],
        "who": who,
        "requestor": True,
    }
    if entry.client_ip:
        agent["network"] = {"address": entry.client_ip, "type": NETWORK_IP}
    return agent


def _resource_entity(entry: AuditEntry) -> JSON | None:
    if not entry.resource_type or (
        entry.resource_type == "Patient" and entry.resource_id in ("", str(entry.patient_id))
    ):
        return None  # the patient entity says it all
    if entry.resource_type in FHIR_REFERENCED and entry.resource_id:
        what = reference(entry.resource_type, entry.resource_id)
        kind = {"system": RESOURCE_TYPES_SYSTEM, "code": entry.resource_type}
    else:
        what = {"display": f"{entry.resource_type} {entry.resource_id}".strip()}
        if entry.resource_id:
            what["identifier"] = {
                "system": f"{RESOURCE_SYSTEM}:{entry.resource_type}",
                "value": entry.resource_id,
            }
        kind = {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"}
    return {
        "what": what,
        "type": kind,
        "role": {"system": OBJECT_ROLE_SYSTEM, "code": "4", "display": "Domain Resource"},
        "name": entry.resource_type,
    }


def _chain_entity(entry: AuditEntry) -> JSON:
    return {
        "what": {
            "identifier": {"system": AUDIT_LOG_SYSTEM, "value": str(entry.seq)},
            "display": "CareSync audit log",
        },
        "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE_SYSTEM, "code": "13", "display": "Security Resource"},
        "name": "Security Audit Log",
        "description": "This event's place in the SHA-256 hash chain of the audit log.",
        "detail": [
            {"type": "seq", "valueString": str(entry.seq)},
            {"type": "hash", "valueString": entry.hash},
            {"type": "prev_hash", "valueString": entry.prev_hash},
            {"type": "flagged", "valueString": "true" if entry.flagged else "false"},
        ],
    }


def to_fhir(entry: AuditEntry, actor_links: dict[uuid.UUID, str] | None = None) -> JSON:
    """The FHIR AuditEvent for an audit entry. ``actor_links`` maps the accounts of those who acted to
    their FHIR resource (``Patient/<id>``, ``Practitioner/<id>``) where they have one."""
    type_code, subtype_code = event_type(entry.action, entry.patient_id is not None)
    subtypes: list[JSON] = [{"system": ACTION_SYSTEM, "code": entry.action}]
    if subtype_code:
        subtypes.append(_dcm(subtype_code))
    entities: list[JSON] = []
    if entry.patient_id is not None:
        entities.append(
            {
                "what": reference("Patient", entry.patient_id),
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient"},
            }
        )
    resource = _resource_entity(entry)
    if resource is not None:
        entities.append(resource)
    entities.append(_chain_entity(entry))
    recorded = entry.at.astimezone(UTC).isoformat()
    return drop_empty(
        {
            "resourceType": "AuditEvent",
            "id": entry.hash,
            "meta": {"lastUpdated": recorded},
            "type": _dcm(type_code),
            "subtype": subtypes,
            "action": action_code(entry.action),
            "recorded": recorded,
            "outcome": OUTCOMES[entry.outcome],
            "outcomeDesc": OUTCOME_TEXT[entry.outcome],
            "agent": [_agent(entry, actor_links or {})],
            "source": {
                "site": "CareSync",
                "observer": {"display": "CareSync"},
                "type": [{"system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server"}],
            },
            "entity": entities,
        }
    )


def _actor_links(ctx: FhirContext, entries: list[AuditEntry]) -> dict[uuid.UUID, str]:
    """References for the people who acted: patients to their Patient, staff with a directory profile to
    their Practitioner (one query each)."""
    patients = {e.actor_id for e in entries if e.actor_id is not None and e.actor_role == "patient"}
    links = {
        user_id: f"Patient/{patient_id}"
        for user_id, patient_id in access_log.patient_ids_of_users(ctx.session, patients).items()
    }
    staff = {e.actor_id for e in entries if e.actor_id is not None and e.actor_role in PRACTITIONER_ROLES}
    for user_id, profile_id in directory.profile_ids_for_users(ctx.session, staff).items():
        links[user_id] = f"Practitioner/{profile_id}"
    return links


# --- interactions -----------------------------------------------------------------------------------------


def parse_id(raw: str) -> str:
    """An AuditEvent id is the entry's hash: 64 lower-case hex characters."""
    if not HASH_ID.match(raw):
        raise ValueError(raw)
    return raw


def read(ctx: FhirContext, entry_hash: str) -> JSON:
    """Read one audit event (a patient: about their record; a clinician: about a patient they may see; an
    administrator: of their organisation). Audited as ``audit.read``."""
    entry = access_log.get_entry(ctx.session, ctx.principal, entry_hash)
    return to_fhir(entry, _actor_links(ctx, [entry]))


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(f"'{value}' is not {what}.") from None


def _patient(query: SearchQuery) -> uuid.UUID | None:
    value = query.one("patient")
    if value is None:
        return None
    tail = value.split("/")
    if len(tail) >= 2 and tail[-2] != "Patient":
        raise invalid(f"'{value}' is not a Patient reference.")
    return _uuid(tail[-1], "a Patient id")


def _agents(ctx: FhirContext, query: SearchQuery) -> list[uuid.UUID]:
    """User ids from ``agent``: a user id (``<id>`` or ``urn:caresync:user|<id>``), ``Patient/<id>`` for a
    patient or ``Practitioner/<id>`` for a directory profile. One that has no account matches nothing."""
    found: list[uuid.UUID] = []
    for value in query.values("agent"):
        system, code = token(value)
        if system not in (None, USER_SYSTEM):
            raise invalid(f"agent: use a user id or {USER_SYSTEM}|<id> (got system '{system}').")
        tail = code.split("/")
        kind = tail[-2] if len(tail) >= 2 else None
        if kind == "Patient":
            user_id = access_log.user_of_patient(ctx.session, _uuid(tail[-1], "a Patient id"))
        elif kind == "Practitioner":
            user_id = _practitioner_user(ctx, _uuid(tail[-1], "a Practitioner id"))
        elif kind is None:
            user_id = _uuid(tail[-1], "a user id")
        else:
            raise invalid(f"agent: '{value}' is not a user, Patient or Practitioner.")
        found.append(user_id or NOBODY)
    return found


def _practitioner_user(ctx: FhirContext, practitioner_id: uuid.UUID) -> uuid.UUID | None:
    try:
        return directory.get_practitioner(ctx.session, ctx.principal, practitioner_id).user_id
    except NotFound:
        return None


def _tokens(query: SearchQuery, name: str, *systems: str, allowed: frozenset[str] | None = None) -> list[str]:
    """The codes of a token parameter (any system of ``systems``, or none given); 400 for another system or
    a code outside ``allowed``."""
    codes: list[str] = []
    for value in query.values(name):
        given_system, code = token(value)
        if given_system is not None and given_system not in systems:
            raise invalid(f"{name}: codes of {' or '.join(systems)} only (got system '{given_system}').")
        if allowed is not None and code not in allowed:
            raise invalid(f"{name}: '{code}' is not one of {', '.join(sorted(allowed))}.")
        codes.append(code)
    return codes


def _action_filter(query: SearchQuery) -> Callable[[str], bool] | None:
    actions = set(_tokens(query, "action", ACTION_CODE_SYSTEM, allowed=frozenset(ACTION_DISPLAY)))
    types: set[str] = set()
    for value in query.values("type"):
        system, code = token(value)
        if system not in (None, DCM):
            raise invalid(f"type: DICOM audit event IDs ({DCM}) only (got system '{system}').")
        types.add(code)
    if not actions and not types:
        return None

    def matches(name: str) -> bool:
        return (not actions or action_code(name) in actions) and (not types or event_type(name)[0] in types)

    return matches


def _entity(query: SearchQuery) -> tuple[str, str] | None:
    """``entity=<Type>/<id>``: the resource the event concerns (our resource type names, e.g.
    ``Appointment/<id>`` or ``HealthRecord/<id>``)."""
    value = query.one("entity")
    if value is None:
        return None
    parts = value.split("/")
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        raise invalid(f"entity: '{value}' is not a reference of the form <Type>/<id>.")
    return parts[-2], parts[-1]


def _entity_types(query: SearchQuery) -> list[str]:
    found: list[str] = []
    for value in query.values("entity-type"):
        system, code = token(value)
        if system not in (None, RESOURCE_TYPES_SYSTEM, RESOURCE_SYSTEM):
            raise invalid(f"entity-type: a resource type ({RESOURCE_TYPES_SYSTEM}) only.")
        found.append(code)
    return found


def search(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Search the audit events the caller may review, newest first. A patient sees the events about
    their own record (``patient`` defaults to it); a clinician must name a patient they may see; an
    administrator searches their organisation's log."""
    period = date_range(query.params.get("date", []))
    reverse_outcomes = {code: ours for ours, code in OUTCOMES.items()}
    outcomes = _tokens(query, "outcome", *OUTCOME_SYSTEMS, allowed=frozenset(reverse_outcomes))
    filters = access_log.AuditFilter(
        patient_id=_patient(query),
        start=period.start,
        end=period.end,
        actor_ids=_agents(ctx, query),
        actor_name=query.one("agent-name") or "",
        actor_roles=_tokens(query, "agent-role", ROLE_SYSTEM),
        actions=_tokens(query, "subtype", ACTION_SYSTEM),
        outcomes=[reverse_outcomes[code] for code in outcomes],
        resource_types=_entity_types(query),
        resource=_entity(query),
    )
    page = access_log.search_entries(
        ctx.session,
        ctx.principal,
        filters,
        action_matches=_action_filter(query),
        limit=max(query.count, 1),
        cursor=query.cursor,
        count_total=True,
    )
    actor_links = _actor_links(ctx, page.items)
    return SearchResult(
        resources=[to_fhir(e, actor_links) for e in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
    )


RESOURCES = (
    ResourceType(
        name="AuditEvent",
        documentation="The hash-chained audit log: a patient sees who accessed their record; an "
        "administrator searches their organisation's log. id = the entry's chain hash; newest first.",
        read=read,
        search=search,
        parse_id=parse_id,
        search_params=(
            SearchParam(
                "patient", "reference", "The patient whose record the event concerns (Patient/<id>)."
            ),
            SearchParam("date", "date", "When the event was recorded (eq, ge, gt, le, lt prefixes)."),
            SearchParam(
                "agent",
                "reference",
                "Who acted: a user id (or urn:caresync:user|<id>), Patient/<id> or Practitioner/<id>.",
            ),
            SearchParam("agent-name", "string", "Part of the name of who acted."),
            SearchParam("agent-role", "token", "The role of who acted (doctor, nurse, patient, admin …)."),
            SearchParam("action", "token", "C, R, U, D or E."),
            SearchParam("subtype", "token", f"Our action name ({ACTION_SYSTEM}), e.g. patient.read."),
            SearchParam("type", "token", "The DICOM audit event ID, e.g. 110110 (Patient Record)."),
            SearchParam("outcome", "token", "0 (success), 4 (denied) or 8 (failure)."),
            SearchParam("entity", "reference", "The resource the event concerns, e.g. Appointment/<id>."),
            SearchParam(
                "entity-type", "token", "The type of the resource the event concerns, e.g. Appointment."
            ),
        ),
    ),
)
