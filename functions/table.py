"""The one table of the stack's functions: one row per function, from which template.yaml's functions follow.

Each row names a handler folder (``functions/<snake_case of name>/app.py``), its routes with the roles each
accepts, and what its policy allows beyond what every function gets. ``python -m functions.template``
(``make template``) writes the rows into template.yaml between its generated markers; the route tests, the
access matrix and ``local.cloudformation.routes`` then read them from there. How to add a route:
docs/deployment.md#adding-a-route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------- the vocabulary of the rows


@dataclass(frozen=True)
class Ref:
    """``!Ref name``."""

    name: str


@dataclass(frozen=True)
class GetAtt:
    """``!GetAtt Resource.Attribute``."""

    target: str


@dataclass(frozen=True)
class Sub:
    """``!Sub text``."""

    text: str


@dataclass(frozen=True)
class If:
    """``!If [condition, when_true, when_false]`` of two scalars."""

    condition: str
    when_true: Any
    when_false: Any


@dataclass(frozen=True)
class Why:
    """A value with the comment that says why; written as ``# ...`` lines above its key or item."""

    text: str
    value: Any


INCENTIVES_USER = "incentives_user"
INCENTIVES_ADMIN = "incentives_admin"
REFERRAL_ADMIN = "referral_admin"
MCI_OPERATIONS = "mci_operations"
# Who may call a route (the handler refuses anyone else with 403; the access matrix proves it route by route).
CLAIM_ROLES = frozenset({INCENTIVES_USER, INCENTIVES_ADMIN})
BROWSE_ROLES = CLAIM_ROLES | {REFERRAL_ADMIN}
OPERATIONS_ROLES = frozenset({MCI_OPERATIONS})
# The scopes the identity provider issues with those roles (docs/deployment.md#identity-provider).
PARTNER_SCOPE = "mci/partner"
OPERATIONS_SCOPE = "mci/operations"


@dataclass(frozen=True)
class Route:
    """One HTTP API route. ``roles`` None: public (no authorizer). ``throttle`` (burst, rate) only where it
    is below the API's DefaultRouteSettings; a route without one has the API default."""

    method: str
    path: str
    roles: frozenset[str] | None
    throttle: tuple[int, int] | None = None
    why_throttle: str = ""
    event: str = ""  # the SAM event's name; the function's name when it serves one route

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def scope(self) -> str | None:
        """The AuthorizationScopes API Gateway demands: the one the identity provider issues with the roles."""
        if self.roles is None:
            return None
        return OPERATIONS_SCOPE if self.roles <= OPERATIONS_ROLES else PARTNER_SCOPE


@dataclass(frozen=True)
class Allow:
    """One Allow statement of the function's inline policy."""

    sid: str
    actions: tuple[str, ...]
    resource: Any  # one resource, or a list of them
    why: str = ""


@dataclass(frozen=True)
class Function:
    """One row: ``name`` ListEngagements is ListEngagementsFunction, functions/list_engagements/, the function
    mci-customers-<stage>-list-engagements and its ListEngagementsLogGroup."""

    name: str
    description: str
    routes: tuple[Route, ...] = ()
    allow: tuple[Allow, ...] = ()
    environment: Mapping[str, Any] = field(default_factory=dict)
    # Other SAM properties as they are written (Timeout, Role, EventInvokeConfig...), and non-HTTP events.
    properties: Mapping[str, Any] = field(default_factory=dict)
    events: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""

    @property
    def logical_id(self) -> str:
        return f"{self.name}Function"

    @property
    def log_group(self) -> str:
        return f"{self.name}LogGroup"

    @property
    def folder(self) -> str:
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in self.name).lstrip("_")

    @property
    def function_name(self) -> str:
        return "mci-customers-${Stage}-" + self.folder.replace("_", "-")


# ---------------------------------------------------------------- resources the statements name

CLAIMS = GetAtt("ClaimsTable.Arn")
GSI1 = Sub("${ClaimsTable.Arn}/index/GSI1")
DUE_INDEX = Sub("${ClaimsTable.Arn}/index/DueIndex")
IDEMPOTENCY = GetAtt("IdempotencyTable.Arn")
SES_SENDER = [
    Sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderEmail}"),
    Sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${ConsentConfigurationSet}"),
]
SEND_EMAIL = ("ses:SendEmail",)
GET = "dynamodb:GetItem"
BATCH_GET = "dynamodb:BatchGetItem"
QUERY = "dynamodb:Query"
PUT = "dynamodb:PutItem"
UPDATE = "dynamodb:UpdateItem"
DELETE = "dynamodb:DeleteItem"
TRANSACTION = "TransactWriteItems is authorised per item through these actions."
# Powertools' idempotency record of a mutating route: put, read back, update, delete on failure.
IDEMPOTENCY_RECORDS = Allow("PowertoolsIdempotency", (GET, PUT, UPDATE, DELETE), IDEMPOTENCY)
# Adding or claiming a customer: one transaction of claims, counters, guards and tokens.
CREATE_CLAIMS = Allow("ReadAndWriteClaims", (GET, BATCH_GET, PUT, UPDATE, DELETE), CLAIMS, TRANSACTION)
# Cancelling or reviewing a claim (which may end it).
END_CLAIM = Allow(
    "ChangeClaim",
    (GET, PUT, UPDATE, DELETE),
    CLAIMS,
    "One transaction: the claim, its limit counter and guard, its consent token.",
)
# Every HTTP function (a row with routes), issue 16 item 3: SnapStart when the stack's EnableSnapStart parameter
# is true, on the versions SAM publishes for the alias its HttpApi routes invoke.
HTTP_FUNCTION_PROPERTIES: Mapping[str, Any] = {
    "AutoPublishAlias": Why(
        "SAM publishes a version at each deploy that changes the function and points its HttpApi routes (integration"
        " and invoke permission) at this alias. Always there: SAM takes no Fn::If on AutoPublishAlias, and SnapStart"
        " applies only to published versions (docs/deployment.md#snapstart).",
        "live",
    ),
    "SnapStart": {"ApplyOn": If("SnapStartOn", "PublishedVersions", "None")},
}
CURSOR_SIGNING_KEY = Sub("{{resolve:secretsmanager:${CursorSigningKey}:SecretString}}")
CURSOR_KEY_WHY = (
    "Signs and checks the cursors of the paged reads, the Customers page and the attention items (rule 31,"
    " mci.settings.cursor_signing_key): resolved by CloudFormation at deploy from the generated secret, so the"
    " template never holds it."
)

# ---------------------------------------------------------------- the table

FUNCTIONS: tuple[Function, ...] = (
    Function(
        name="Reads",
        description="Reads and previews - engagements, locations, known customers, Customers page, attention items,"
        " claims, referrals, eligibility checks and payment quotes.",
        why="Grouped so that a partner's session meets one cold start for all its reads and previews; add customer,"
        " claim customer, consent send and the consent page stay separate (the design card). Its policy is the"
        " union of what the routes read, and reads only.",
        routes=(
            Route("GET", "/engagements", BROWSE_ROLES, event="ListEngagements"),
            Route("GET", "/locations", BROWSE_ROLES, event="ListLocations"),
            Route("POST", "/eligibility-checks", CLAIM_ROLES, throttle=(50, 25), event="CheckEligibility"),
            Route("POST", "/payment-quotes", CLAIM_ROLES, throttle=(50, 25), event="QuotePayment"),
            Route("GET", "/claims/{claim_id}", CLAIM_ROLES, event="GetClaim"),
            Route("GET", "/known-customers", CLAIM_ROLES, throttle=(50, 25), event="ListKnownCustomers"),
            Route(
                "GET",
                "/engagements/{engagement_id}/customers",
                CLAIM_ROLES,
                throttle=(50, 25),
                event="CustomersPage",
            ),
            Route("GET", "/attention-items", CLAIM_ROLES, throttle=(50, 25), event="AttentionItems"),
            Route(
                "GET",
                "/referrals/{referral_id}",
                frozenset({REFERRAL_ADMIN}),
                throttle=(50, 25),
                event="GetReferral",
            ),
        ),
        allow=(
            Allow(
                "ReadClaimsAndReferenceData",
                (GET, BATCH_GET, QUERY),
                CLAIMS,
                "A claim or referral by key; reference data, known customers and limit counters in one BatchGetItem;"
                " engagements and known customers by Query.",
            ),
            Allow(
                "QueryPartnerIndex",
                (QUERY,),
                GSI1,
                "The partner's locations and its claims of an engagement (Customers page tabs, attention items).",
            ),
        ),
        environment={"CURSOR_SIGNING_KEY": Why(CURSOR_KEY_WHY, CURSOR_SIGNING_KEY)},
    ),
    Function(
        name="AddCustomer",
        description="POST /customers - add a customer to one or more engagements (one transaction).",
        routes=(Route("POST", "/customers", CLAIM_ROLES, throttle=(40, 20)),),
        allow=(
            CREATE_CLAIMS,
            IDEMPOTENCY_RECORDS,
        ),
    ),
    Function(
        name="ClaimCustomer",
        description="POST /known-customers/{customer_id}/claims - claim a known customer (one transaction).",
        routes=(Route("POST", "/known-customers/{customer_id}/claims", CLAIM_ROLES, throttle=(40, 20)),),
        allow=(
            CREATE_CLAIMS,
            IDEMPOTENCY_RECORDS,
        ),
    ),
    Function(
        name="LoadReferenceData",
        description="POST /ops/reference-data - operations load or replace reference data.",
        routes=(Route("POST", "/ops/reference-data", OPERATIONS_ROLES, throttle=(5, 2)),),
        allow=(
            Allow(
                "UpsertReferenceData",
                ("dynamodb:BatchWriteItem",),
                CLAIMS,
                "Records are upserted 25 at a time with BatchWriteItem; nothing is read or written alone.",
            ),
            IDEMPOTENCY_RECORDS,
        ),
        properties={"Timeout": 30},
    ),
    Function(
        name="RequestConsent",
        description="POST /claims/{claim_id}/consent-requests - send or resend the consent email.",
        routes=(
            Route(
                "POST",
                "/claims/{claim_id}/consent-requests",
                CLAIM_ROLES,
                throttle=(20, 10),
                why_throttle="Each call may send an email: kept low (the domain also limits resends per claim).",
            ),
        ),
        allow=(
            Allow("ReadAndWriteClaims", (GET, BATCH_GET, PUT, DELETE), CLAIMS, TRANSACTION),
            IDEMPOTENCY_RECORDS,
            Allow(
                "SendConsentEmail",
                SEND_EMAIL,
                SES_SENDER,
                "SES v2 SendEmail is authorised on the sending identity and on the configuration set.",
            ),
        ),
    ),
    Function(
        name="ConsentPage",
        description="GET, HEAD and POST /consent/{token} - the customer's public consent page.",
        routes=(
            Route("GET", "/consent/{token}", None, throttle=(20, 10), event="ShowConsentPage"),
            Route("HEAD", "/consent/{token}", None, throttle=(20, 10), event="HeadConsentPage"),
            Route("POST", "/consent/{token}", None, throttle=(10, 5), event="DecideConsent"),
        ),
        allow=(
            Allow("ReadAndDecideClaims", (GET, BATCH_GET, PUT, UPDATE, DELETE), CLAIMS),
            Allow("SendDecisionEmail", SEND_EMAIL, SES_SENDER, "The partner contact hears of the decision (rule 16)."),
        ),
    ),
    Function(
        name="SubmitClaim",
        description="POST /claims/{claim_id}/submission - submit a consented claim before its submission deadline.",
        routes=(Route("POST", "/claims/{claim_id}/submission", CLAIM_ROLES, throttle=(40, 20)),),
        allow=(
            Allow(
                "ChangeClaim",
                (GET, PUT, UPDATE),
                CLAIMS,
                "One transaction: the claim and its limit counter (the submission deadline it now holds).",
            ),
            IDEMPOTENCY_RECORDS,
        ),
    ),
    Function(
        name="CancelClaim",
        description="POST /claims/{claim_id}/cancellation - cancel an active claim that is not submitted.",
        routes=(Route("POST", "/claims/{claim_id}/cancellation", CLAIM_ROLES, throttle=(40, 20)),),
        allow=(
            END_CLAIM,
            IDEMPOTENCY_RECORDS,
        ),
    ),
    Function(
        name="ReviewClaim",
        description="POST /ops/claims/{claim_id}/review - operations complete or reject a submitted claim.",
        routes=(Route("POST", "/ops/claims/{claim_id}/review", OPERATIONS_ROLES, throttle=(20, 10)),),
        allow=(
            END_CLAIM,
            IDEMPOTENCY_RECORDS,
        ),
    ),
    Function(
        name="ExpireClaims",
        description="Scheduled sweep - expire claims past their deadline and send consent reminders.",
        allow=(
            Allow(
                "QueryDueIndex",
                (QUERY,),
                DUE_INDEX,
                "Due claims come whole from the sparse DueIndex (projection ALL).",
            ),
            Allow(
                "ExpireAndRemind",
                (GET, BATCH_GET, PUT, UPDATE, DELETE),
                CLAIMS,
                "Expire or mark a reminder in one transaction (claim, counter, guard, token); engagement names"
                " for the reminder email.",
            ),
            Allow("SendReminderEmail", SEND_EMAIL, SES_SENDER, "Reminders to the partner contact (rule 17)."),
        ),
        environment={
            "SES_MAX_SEND_RATE": Why(
                "The run's emails go out at most this many a second; a run SES throttles all the same leaves the rest"
                " queued for the next (mci.domain.sending, docs/scaling.md).",
                Ref("SesMaxSendRate"),
            ),
            "SWEEP_SEND_MARGIN_SECONDS": Why(
                "The run stops sending this long before its timeout and defers the rest (docs/scaling.md).",
                Ref("SweepSendMarginSeconds"),
            ),
        },
        properties={
            "Timeout": Why("One run handles up to 500 due claims; what is left waits for the next run.", 300),
            "ReservedConcurrentExecutions": Why(
                "At most one sweep at a time: a run that fires while another is still going waits (throttled).", 1
            ),
            "EventInvokeConfig": Why(
                "The Scheduler invokes asynchronously. Every run is idempotent and the next one is 5 minutes away,"
                " so a failed run is not retried by Lambda, and a run still waiting behind a slow one after 5"
                " minutes is dropped; both are parked in the queue so they are seen.",
                {
                    "MaximumRetryAttempts": 0,
                    "MaximumEventAgeInSeconds": 300,
                    "DestinationConfig": {
                        "OnFailure": {"Type": "SQS", "Destination": GetAtt("ExpirySweepDeadLetterQueue.Arn")}
                    },
                },
            ),
        },
        events={
            "SweepSchedule": {
                "Type": "ScheduleV2",
                "Properties": {
                    "Name": Sub("mci-customers-${Stage}-expiry-sweep"),
                    "Description": "Expire claims past their deadline and send consent reminders (rule 17).",
                    "ScheduleExpression": "rate(5 minutes)",
                    "FlexibleTimeWindow": {"Mode": "OFF"},
                    "State": "ENABLED",
                    "RetryPolicy": Why(
                        "Invocations the Scheduler cannot deliver (after these retries) land in the queue.",
                        {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 300},
                    ),
                    "DeadLetterConfig": {"Arn": GetAtt("ExpirySweepDeadLetterQueue.Arn")},
                },
            }
        },
    ),
    Function(
        name="PublishEvents",
        description="ClaimsTable stream - publish each committed claim or referral change as a domain event.",
        why="Events derive from committed state: the table's stream, never the request. Each stream record's event"
        " is published once; a record that cannot be published holds back the rest of its shard.",
        environment={
            "EVENT_BUS_NAME": Ref("CustomersEventBus"),
            "PUBLISHED_EVENT_VERSIONS": Why(
                "Detail versions put for each change during a transition (docs/events.md#versions).",
                Ref("PublishedEventVersions"),
            ),
        },
        properties={
            "Timeout": 60,
            "Role": Why(
                'Its own role: SAM would attach AWSLambdaDynamoDBExecutionRole (stream reads and logs on "*") to a'
                " generated role for a DynamoDB event. This one reads this stream only.",
                GetAtt("PublishEventsRole.Arn"),
            ),
        },
        events={
            "ClaimsStream": {
                "Type": "DynamoDB",
                "Properties": {
                    "Stream": GetAtt("ClaimsTable.StreamArn"),
                    "StartingPosition": Why(
                        "Every change since the stream began, on the first deploy too.", "TRIM_HORIZON"
                    ),
                    "BatchSize": 25,
                    "ParallelizationFactor": 1,
                    "FunctionResponseTypes": Why(
                        "The handler names the first record it could not publish and publishes nothing after it;"
                        " Lambda retries from that record, so each record's event goes out once.",
                        ["ReportBatchItemFailures"],
                    ),
                    "BisectBatchOnFunctionError": Why(
                        "Ordering matters: consumers must never see a claim's version n+1 before version n. Bisecting"
                        " would re-deliver records of the first half that were already published and, once a half is"
                        " given up, publish later changes of a claim after a gap. Without it a failing record holds"
                        " back its shard until it is published or given up as a whole.",
                        False,
                    ),
                    "MaximumRetryAttempts": Why(
                        "A record the handler cannot read, or whose event EventBridge refuses for good, is logged as a"
                        " poison record and passed over (PublishEventsPoisonRecordsAlarm). What stays is retryable"
                        " (throttling, an outage, a permission an operator must fix): retried until published or 6"
                        " hours old; then the batch's shard and sequence range go to the queue while the stream"
                        " (24 h) still holds the records for a replay (docs/deployment.md).",
                        -1,
                    ),
                    "MaximumRecordAgeInSeconds": 21600,
                    "DestinationConfig": {
                        "OnFailure": {"Type": "SQS", "Destination": GetAtt("PublishEventsDeadLetterQueue.Arn")}
                    },
                    "FilterCriteria": Why(
                        "Only claim and referral items become events; counters, guards, tokens, known customers and"
                        " reference data never invoke the function.",
                        {
                            "Filters": [
                                {"Pattern": '{"dynamodb": {"NewImage": {"type": {"S": ["claim", "referral"]}}}}'},
                                {"Pattern": '{"dynamodb": {"OldImage": {"type": {"S": ["claim", "referral"]}}}}'},
                            ]
                        },
                    ),
                },
            }
        },
    ),
    Function(
        name="SesFeedback",
        description="SES bounce and complaint events (EventBridge) - mark the claim's consent email.",
        allow=(Allow("MarkConsentEmail", (GET, PUT), CLAIMS),),
        properties={
            "EventInvokeConfig": Why(
                "EventBridge invokes asynchronously: a handler failure is retried by Lambda, then parked.",
                {
                    "MaximumRetryAttempts": 2,
                    "MaximumEventAgeInSeconds": 21600,
                    "DestinationConfig": {
                        "OnFailure": {"Type": "SQS", "Destination": GetAtt("SesFeedbackDeadLetterQueue.Arn")}
                    },
                },
            ),
        },
        events={
            "SesBounceOrComplaint": {
                "Type": "EventBridgeRule",
                "Properties": {
                    "RuleName": Sub("mci-customers-${Stage}-ses-feedback"),
                    "Pattern": {
                        "source": ["aws.ses"],
                        "detail-type": ["Email Bounced", "Email Complaint Received"],
                        "detail": {"mail": {"tags": {"ses:configuration-set": [Ref("ConsentConfigurationSet")]}}},
                    },
                    "DeadLetterConfig": Why(
                        "Events EventBridge cannot deliver to the function land in the queue.",
                        {"Arn": GetAtt("SesFeedbackDeadLetterQueue.Arn")},
                    ),
                    "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
                },
            }
        },
    ),
)


def routes() -> list[tuple[Function, Route]]:
    """Every route of the table with the function that serves it, in table order."""
    return [(function, route) for function in FUNCTIONS for route in function.routes]


def route_roles() -> dict[str, frozenset[str] | None]:
    """Route key ("METHOD /path") -> the roles it accepts (None: public)."""
    return {route.key: route.roles for _, route in routes()}
